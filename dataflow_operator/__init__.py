"""dataflow-operator: declarative data pipelines on Kubernetes with first-class Prometheus metrics."""

__version__ = "0.1.0"
