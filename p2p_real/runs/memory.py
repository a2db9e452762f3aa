"""Out-of-GPU-memory back-off, written once for every job: work on a batch of items, and when the
GPU runs out of memory, release the failed attempt and try smaller parts, down to one item, which
alone fails, with a message that says what to try. This is the one place that catches
`torch.OutOfMemoryError`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import torch

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Failed:
    """An item's failure in a batch: what to tell the user."""

    message: str


@dataclass
class BatchLimit:
    """The most items worked on together; lowered for the rest of the run by a batch that ran out of GPU memory."""

    size: int


def split_on_out_of_memory(work: Callable[[list[Item]], Sequence[Result]], items: Sequence[Item], model,
                           advice: str, limit: BatchLimit | None = None, one_by_one: bool = False,
                           also: tuple[type[Exception], ...] = ()) -> list[Result | Failed]:
    """`work(items)` (a result per item, in order), or, when it runs out of GPU memory (or raises one
    of `also`), the same for parts: halves, lowering `limit` so that later batches of the run start
    there (one error costs one retry, not one per batch), or `one_by_one`. An item that fails alone
    becomes Failed("out of GPU memory: <advice>"), or Failed(str(error)) for one of `also`.

    The retry runs after the `except` block is left, once the traceback no longer holds the failed
    attempt's tensors; `model.free_gpu_memory()` releases what it cached."""
    items = list(items)
    if not items:
        return []
    if limit is not None and len(items) > limit.size:  # claimed before the limit was lowered
        return [outcome for start in range(0, len(items), limit.size)
                for outcome in split_on_out_of_memory(work, items[start : start + limit.size], model, advice, limit,
                                                      one_by_one, also)]
    out_of_memory = False
    try:
        return list(work(items))
    except torch.OutOfMemoryError:
        out_of_memory, failure = True, Failed(f"out of GPU memory: {advice}")
    except also as error:
        failure = Failed(str(error))  # not the error itself: it would keep the traceback, and the tensors, alive
    if out_of_memory:
        model.free_gpu_memory()
    if len(items) == 1:
        return [failure]
    size = 1 if one_by_one else (len(items) + 1) // 2
    if limit is not None:
        limit.size = min(limit.size, size)
    return [outcome for start in range(0, len(items), size)
            for outcome in split_on_out_of_memory(work, items[start : start + size], model, advice, limit, one_by_one,
                                                  also)]
