"""When each attention edit is active: per step, and for cross-attention also per token.

Fractions of the number of sampling steps T, as in Hertz et al. 2023: a float b means (0, b).
"""
from __future__ import annotations

import torch

from ..errors import is_number
from .alignment import token_positions
from .options import check_window

Window = float | tuple[float, float]


def as_window(value: Window, name: str = "window") -> tuple[float, float]:
    """A fraction b as (0, b), a window as (start, end); checked by EditOptions' own rule."""
    check_window(name, value)
    return (0.0, float(value)) if is_number(value) else (float(value[0]), float(value[1]))


def cross_replace_alphas(tokenizer, target: str, num_steps: int, cross_replace_steps, length: int) -> torch.Tensor:
    """(T + 1, length): 1 where the target's cross-attention takes the source's (edited) maps.

    `cross_replace_steps` is a window for all tokens, or a dict {"default_": window, "word": window}
    whose word entries override the default on that word's tokens in the target prompt.
    """
    windows = cross_replace_steps if isinstance(cross_replace_steps, dict) else {"default_": cross_replace_steps}
    alphas = torch.zeros(num_steps + 1, length)

    def fill(window: Window, positions) -> None:
        start, end = as_window(window, "cross_replace_steps")
        alphas[:, positions] = 0
        alphas[int(start * (num_steps + 1)) : int(end * (num_steps + 1)), positions] = 1

    fill(windows.get("default_", (0.0, 1.0)), slice(None))
    for word, window in windows.items():
        if word != "default_":
            fill(window, token_positions(tokenizer, target, word))
    return alphas


def self_replace_range(num_steps: int, self_replace_steps: Window) -> range:
    """Steps [int(T s0), int(T s1)) in which the target's self-attention takes the source's."""
    start, end = as_window(self_replace_steps, "self_replace_steps")
    return range(int(num_steps * start), int(num_steps * end))
