"""What a run over many items did with each: done, skipped (already done), busy (being done by
another run on the same output, which finishes it) or failed (with why)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class RunReport(Generic[Item, Result]):
    done: list[tuple[Item, Result]] = field(default_factory=list)
    skipped: list[Item] = field(default_factory=list)
    busy: list[Item] = field(default_factory=list)
    failed: list[tuple[Item, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, part: "RunReport", busy: bool = True) -> int:
        """Add what a part of the run did (its busy items too, unless `busy` is False: a part that
        took them up again) to this report; how many items the part settled."""
        self.done += part.done
        self.skipped += part.skipped
        self.busy += part.busy if busy else []
        self.failed += part.failed
        return len(part.done) + len(part.skipped) + len(part.busy) + len(part.failed)
