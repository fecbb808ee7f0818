"""Routing, as Benthos' ``switch`` output: a route table of condition → sink, owned by the engine.

The spec's ``router`` entries (spec/routes.py) give two things. The table: every route's sink, keyed
by the route's condition text over *all* router entries — the text is the route's identity, so a
later route with the same text replaces the earlier one's sink. And, where each entry stands in the
transformations, a :class:`RouteChoice` step: the first route whose condition holds for the message
as it is *at that point* is recorded on ``message.route``; later steps keep it, and a later router
that matches nothing leaves it. The engine then hands each message to its route's writer, or to the
main sink's when it has none (transformations.md §3.5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..pipeline.message import Message
from ..spec.routes import ROUTER_TYPE, RouterSpec
from ..transformers.conditions import Condition
from ..transformers.jsonvalues import MISSING, peek_doc

#: The route label of messages no router sent elsewhere: the main sink.
DEFAULT_ROUTE = "default"


@dataclass(frozen=True, slots=True)
class RouteTable:
    #: Route label (condition text) → sink component, in the order the labels first appear.
    sinks: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of(cls, routers: Iterable[RouterSpec]) -> RouteTable:
        sinks: dict[str, Mapping[str, Any]] = {}
        for router in routers:
            for route in router.routes:
                sinks[route.condition] = route.sink
        return cls(sinks)


class RouteChoice:
    """A router entry's place in the chain: it never drops, fails or copies a message, it only
    records the first matching route (a message no route matches keeps the route it had)."""

    type_name = ROUTER_TYPE

    def __init__(self, router: RouterSpec) -> None:
        self.conditions = [Condition(route.condition) for route in router.routes]
        self.needs_payload = any(condition.needs_payload for condition in self.conditions)
        self.when = Condition(router.when) if router.when is not None else None

    def transform(self, message: Message) -> list[Message]:
        if self.when is not None and not self.when.matches(message):
            return [message]
        payload = peek_doc(message) if self.needs_payload else MISSING
        metadata = message.metadata
        for condition in self.conditions:
            if condition.evaluate(payload, metadata):
                message.route = condition.text
                break
        return [message]
