"""EditState: the only mutable part of an edit.

A CUDA-graph replay of the UNet skips Python, so whatever changes from step to step lives in
tensors updated in place: the step index (a device tensor that the processors index the plan with)
and the attention maps, summed in place into buffers made on the first, eager call. Python-side
counters (`layers_seen`) only move on eager calls and captures, which is all their checks need.
"""
from __future__ import annotations

import torch


class EditState:
    def __init__(self, device):
        self.step = torch.zeros((), dtype=torch.long, device=device)
        # The kept cross-attention maps, averaged over heads and summed over layers and steps in one
        # buffer: bounded memory at any depth (SDXL keeps 50 layers of 20 heads at 32x32).
        self.map_sum: torch.Tensor | None = None  # (P, r, r, keys)
        self.map_layers: set[str] = set()
        self.layers_seen = 0

    def begin_step(self, index: int) -> None:
        """A `before_step` callback of `ddim_sample`."""
        self.step.fill_(index)

    def at_step(self, per_step: torch.Tensor) -> torch.Tensor:
        """per_step[step], read on the device: a replay sees the current step, with no host sync."""
        return per_step.index_select(0, self.step.reshape(1))[0]

    def add_maps(self, layer: str, maps: torch.Tensor) -> None:
        """maps: (P, heads, r, r, keys) of one layer at one step."""
        if self.map_sum is None:
            self.map_sum = torch.zeros_like(maps[:, 0])
        self.map_sum.add_(maps.mean(1))
        self.map_layers.add(layer)

    @property
    def cross_maps(self) -> torch.Tensor | None:
        """(P, 1, r, r, keys): the kept maps averaged over heads and layers, summed over the steps so far."""
        return None if self.map_sum is None else (self.map_sum / len(self.map_layers))[:, None]
