"""``dataflow-operator test``: pipeline tests declared next to a DataFlow, run offline (cases.py: the
file format; memory.py: the stand-in connectors; runner.py: one case; report.py: files and diffs)."""
