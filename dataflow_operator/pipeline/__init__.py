"""The pipeline kernel: what connectors, transformers and the processor runtime share.

Message and its acknowledgement, positions and checkpoint stores, error classification, the
Source / Sink / Transformer contracts, config-field helpers, metric handles, and the JSON and time
text helpers. It imports nothing else of ``dataflow_operator`` (``tests/unit/test_import_graph.py``
holds it to that), so every other package may depend on it and it on none of them.
"""
