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
