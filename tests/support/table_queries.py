"""Count what Table Storage answers a store's queries (the SDK yields the service's entities; any
client-side filter comes after), so a test can show a read is keyed, not a partition scan."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answered:
    filters: list[str] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        self.filters.clear()
        self.entities.clear()


def count_queries(table: Any) -> Answered:
    """Wrap ``table.query_entities`` (an azure TableClient) to record each filter and entity answered."""
    answered = Answered()
    query = table.query_entities

    def counted(query_filter: str, **kwargs: Any) -> Iterator[Any]:
        answered.filters.append(query_filter)
        for entity in query(query_filter, **kwargs):
            answered.entities.append(entity)
            yield entity

    table.query_entities = counted
    return answered
