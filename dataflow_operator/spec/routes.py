"""The ``router`` entries of ``spec.transformations``: parsed once, with the spec, into :class:`RouterSpec`
(``TransformationSpec.router``).

A router is written among the transformations (``type: router``) because where it stands decides
which form of the message its conditions see, but it is not a transformer: it only chooses a route,
and the engine's route table sends the message to that route's sink (transformations.md §3.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..pipeline.config_fields import FieldError, Fields
from ..transformers import registry, validation

if TYPE_CHECKING:  # api.py imports this module for the transformation types
    from .api import SinkSpec

ROUTER_TYPE = "router"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    condition: str              # also the route's identity and its metrics label
    sink: SinkSpec              # typed as ``spec.sink``


@dataclass(frozen=True, slots=True)
class RouterSpec:
    """One router entry: its routes in the order they are tried, and its ``when`` (blank: always)."""

    type_name: ClassVar[str] = ROUTER_TYPE
    config_optional: ClassVar[bool] = False
    config_keys: ClassVar[tuple[str, ...]] = ("routes",)

    routes: tuple[RouteSpec, ...]
    when: str | None = None

    @classmethod
    def parse_config(cls, config: Mapping[str, Any] | None, path: str, errors: list[FieldError]) -> None:
        """Checks all but the route sinks, which are connector specs: spec validation parses them
        with the sink rules into the entry's :class:`RouterSpec`."""
        fields = Fields(config, path, errors)
        fields.unknown_keys(cls.config_keys)
        routes = fields.config.get("routes")
        if routes is None:
            fields.error("routes", "required")
        elif not isinstance(routes, list):
            fields.error("routes", "must be a list of {condition, sink}")
        else:
            for index, route in enumerate(routes):
                route_path = f"{fields.at('routes')}[{index}]"
                if not isinstance(route, Mapping):
                    errors.append(FieldError(route_path, "must be an object with condition and sink"))
                    continue
                route_fields = Fields(route, route_path, errors)
                route_fields.unknown_keys(("condition", "sink"))
                validation.condition(route_fields, "condition")


def entry_rules() -> dict[str, registry.EntryRules]:
    """Every ``type`` a transformations entry may have: the transformers, and ``router``."""
    return {**registry.types(), ROUTER_TYPE: RouterSpec}
