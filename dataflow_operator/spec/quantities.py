"""Kubernetes resource quantities (``100m``, ``1Gi``, ``1e3``, ``0.5``), parsed to check them.

The grammar is apimachinery's (resource.Quantity): a signed decimal number and an optional suffix
that is a binary SI unit (Ki … Ei), a decimal SI unit (m, k, M … E) or a decimal exponent (e3,
E-2). A JSON/YAML number is a quantity too. The value is not needed beyond its sign, so the
exponent is never expanded (``1e999999999`` costs nothing).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Final

from ..pipeline.config_fields import shown, type_name

_QUANTITY: Final = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
                              r"(Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE]|[eE][+-]?[0-9]+)?")


def quantity_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid non-negative resource quantity; None when it is one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return f"must be a quantity such as 500m or 1Gi, got {type_name(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite quantity, got {value}"
    if isinstance(value, str):
        match = _QUANTITY.fullmatch(value)
        if match is None:
            return f"must be a quantity such as 500m, 1Gi or 1e3; got {shown(value)}"
        negative = match[1] == "-" and Decimal(match[2]) != 0
    else:
        negative = value < 0
    return f"must not be negative, got {shown(str(value))}" if negative else None
