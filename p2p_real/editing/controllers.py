"""Prompt-to-Prompt controllers (Hertz et al. 2023): what the target branch's attention becomes.

A controller sees `(probabilities, is_cross, place, num_queries)` for every layer that it asked
for, with probabilities (2P, heads, queries, keys): the P unconditional rows first (left alone),
then the P conditional rows, source prompt first. The sampler sets `step` before each UNet call.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class AttentionStore:
    """Sums the conditional cross-attention maps of down and up layers at one resolution over steps."""

    resolution: int  # maps of layers with resolution^2 queries are kept (16 for SD v1 at 512 px)
    step: int = 0
    cross_maps: torch.Tensor | None = None  # (P, layers*heads, r, r, keys), summed over steps
    _this_step: list = field(default_factory=list)
    layers_seen: int = 0

    def stores(self, is_cross: bool, place: str, num_queries: int) -> bool:
        return is_cross and place != "mid" and num_queries == self.resolution**2

    def wants(self, is_cross: bool, place: str, num_queries: int) -> bool:
        return self.stores(is_cross, place, num_queries)

    def keep(self, conditional: torch.Tensor, is_cross: bool, place: str, num_queries: int) -> None:
        if self.stores(is_cross, place, num_queries):
            prompts, heads, _, keys = conditional.shape
            self._this_step.append(conditional.detach().float().reshape(prompts, heads, self.resolution, self.resolution, keys))

    def end_step(self) -> None:
        """Fold this step's maps into the running sum (called after each UNet call)."""
        if self._this_step:
            maps = torch.cat(self._this_step, dim=1)
            self.cross_maps = maps if self.cross_maps is None else self.cross_maps + maps
            self._this_step = []

    def __call__(self, probabilities, is_cross, place, num_queries):
        self.layers_seen += 1
        self.keep(probabilities[probabilities.shape[0] // 2 :], is_cross, place, num_queries)
        return probabilities


@dataclass
class EditController(AttentionStore):
    """Word swap (`replace_mappers`), refinement (`refine_indices`/`refine_alphas`) and re-weighting
    (`equalizer`), each optional and chained in that order, then mixed with the target's own maps
    by the per-step, per-token `cross_alphas`; self-attention is taken from the source in `self_steps`.
    """

    cross_alphas: torch.Tensor | None = None  # (T + 1, keys)
    self_steps: range = range(0)
    self_max_queries: int = 0  # only layers this small have their self-attention replaced
    replace_mappers: torch.Tensor | None = None  # (P - 1, keys, keys)
    refine_indices: torch.Tensor | None = None  # (P - 1, keys)
    refine_alphas: torch.Tensor | None = None  # (P - 1, keys)
    equalizer: torch.Tensor | None = None  # (P - 1, keys)

    def wants(self, is_cross: bool, place: str, num_queries: int) -> bool:
        if is_cross:
            return True  # 77 keys: explicit probabilities are cheap here
        return self.step in self.self_steps and num_queries <= self.self_max_queries

    def edit_cross(self, base: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """base (h, q, k) from the source, targets (P-1, h, q, k) -> edited targets."""
        edited = base.expand_as(targets)
        if self.replace_mappers is not None:
            edited = torch.einsum("hqw,pwn->phqn", base, self.replace_mappers.to(base))
        elif self.refine_indices is not None:
            gathered = base[:, :, self.refine_indices].permute(2, 0, 1, 3)  # (P-1, h, q, k)
            alphas = self.refine_alphas.to(base)[:, None, None, :]
            edited = gathered * alphas + targets * (1 - alphas)
        if self.equalizer is not None:
            edited = edited * self.equalizer.to(base)[:, None, None, :]
        alpha = self.cross_alphas[self.step].to(base)  # (keys,)
        return edited * alpha + targets * (1 - alpha)

    def __call__(self, probabilities, is_cross, place, num_queries):
        self.layers_seen += 1
        prompts = probabilities.shape[0] // 2
        conditional = probabilities[prompts:]
        base, targets = conditional[0], conditional[1:]
        targets = self.edit_cross(base, targets) if is_cross else base.expand_as(targets)
        conditional = torch.cat([base[None], targets])
        self.keep(conditional, is_cross, place, num_queries)  # LocalBlend reads the edited maps
        return torch.cat([probabilities[:prompts], conditional])
