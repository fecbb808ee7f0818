"""``python -m tests.integration.operator.run_operator '<OperatorOptions as JSON>'``: the operator as its
own process (killable, with its own identity), through the same ``run_operator`` the CLI calls."""

from __future__ import annotations

import json
import sys

from dataflow_operator.observability.logging import setup_logging
from dataflow_operator.operator.manager import OperatorOptions, run_operator

if __name__ == "__main__":
    setup_logging(role="operator")
    sys.exit(run_operator(OperatorOptions(**json.loads(sys.argv[1]))))
