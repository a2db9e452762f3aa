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
        self.map_sums: dict[str, torch.Tensor] = {}  # layer name -> (P, heads, r, r, keys), in the UNet's call order
        self.layers_seen = 0

    def begin_step(self, index: int) -> None:
        """A `before_step` callback of `ddim_sample`."""
        self.step.fill_(index)

    def at_step(self, per_step: torch.Tensor) -> torch.Tensor:
        """per_step[step], read on the device: a replay sees the current step, with no host sync."""
        return per_step.index_select(0, self.step.reshape(1))[0]

    def add_maps(self, layer: str, maps: torch.Tensor) -> None:
        if layer not in self.map_sums:
            self.map_sums[layer] = torch.zeros_like(maps)
        self.map_sums[layer].add_(maps)

    @property
    def cross_maps(self) -> torch.Tensor | None:
        """(P, layers*heads, r, r, keys): the kept maps summed over the steps so far."""
        return torch.cat(list(self.map_sums.values()), dim=1) if self.map_sums else None
