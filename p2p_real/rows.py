"""The batch order of a guided UNet call, written once.

A guided call stacks the unconditional rows on top of the conditional ones, [unconditional x P,
conditional x P]; in an edit the P prompts are the source first, then the targets. Everything that
reads rows (the sampler, the attention processors, LocalBlend, Direct Inversion's offsets) goes
through these helpers, so the order can change in one place.
"""
from __future__ import annotations

import torch


def stack_for_guidance(unconditional: torch.Tensor, conditional: torch.Tensor) -> torch.Tensor:
    """(P, ...) and (P, ...) -> (2P, ...): the batch of one guided UNet call."""
    return torch.cat([unconditional, conditional])


def split_guidance(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(2P, ...) -> the unconditional rows (P, ...) and the conditional rows (P, ...)."""
    return batch.chunk(2)


def split_source(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, ...) prompt rows of an edit -> the source row (1, ...) and the target rows (P - 1, ...)."""
    return rows[:1], rows[1:]


def join_source(source: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.cat([source, targets])
