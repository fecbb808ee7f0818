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
