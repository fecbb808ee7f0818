"""Pinned versions of every test peer: the one place to bump them.

The Go wrapper modules under hack/ pin the same Kubernetes and etcd versions in their go.mod; the
provisioner refuses to build when they disagree, so the stamp never claims a version it did not build.
"""

from __future__ import annotations

POSTGRESQL_MAJOR = "15"
KAFKA = "4.2.2"
KUBERNETES = "v1.36.3"
ETCD = "v3.6.16"
# Prometheus v3 is published on the Go module proxy as v0.3XX.Y (v0.316.0 is Prometheus 3.16.0).
PROMETHEUS = "3.16.0"
PROMETHEUS_MODULE = "v0.316.0"
HELM = "v3.22.0"

# --- the single-node test cluster (tests/peers/cluster.py) ---
# kube-controller-manager, kube-scheduler, kubelet and kube-proxy are KUBERNETES too, one multi-call
# binary (hack/kube-node) built like kube-apiserver. These hosts have cgroup v1 (hybrid), which kubelets
# since 1.35 refuse unless told `failCgroupV1: false` (KEP-5573); 1.36 still runs on it when told.
# The runtime is Debian bookworm's own, from the machines' package source: containerd 1.6 (CRI v1; the
# kubelet logs that it lacks RuntimeConfig and carries on), runc 1.1 and containernetworking-plugins
# 1.1 (bridge + host-local). buildah builds the images (daemonless: no Docker engine here), debootstrap
# makes their base, iptables is what kube-proxy programs (conntrack: its documented companion).
NODE_RUNTIME_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "iptables", "conntrack", "buildah",
                         "debootstrap")
NODE_RUNTIME = "bookworm"
# The base image under the Dockerfile's FROM name: Debian bookworm with its CPython 3.11 (3.11.2), the
# version the Dockerfile names; plus the pause image built from hack/pause. Bump to rebuild both.
NODE_IMAGES = "bookworm-python3.11-1"
