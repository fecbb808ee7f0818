"""Real test peers (PostgreSQL, Kafka, kube-apiserver + etcd, Prometheus, promtool, helm).

`python -m tests.peers provision` obtains and caches them; `tests.peers.fixtures` starts them for
pytest. See /work/shared/TESTING.md for where each one comes from.
"""
