"""The ``connector_name`` of each connector in a pipeline: a label of the ``dataflow_connector_*``
series, and how the terminal summary tells the sinks apart."""

from __future__ import annotations

SOURCE = "source"
MAIN_SINK = "sink"
ERROR_SINK = "error_sink"


def route_sink(index: int) -> str:
    """The sink of the ``index``-th route, in the order the router declares its routes."""
    return f"route_{index}"
