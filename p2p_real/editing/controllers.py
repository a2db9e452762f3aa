"""Prompt-to-Prompt controllers (Hertz et al. 2023): what the target branch's attention becomes.

A controller sees `(probabilities, is_cross, place, num_queries)` for every layer that it asked
for, with probabilities (2P, heads, queries, keys): the P unconditional rows first (left alone),
then the P conditional rows, source prompt first. The sampler calls `begin_step(index)` before each
UNet call.

Controllers can run inside a CUDA-graph replay of the UNet, which skips Python: what changes from
step to step is read from tensors they update in place (`begin_step`), the maps are summed in place,
and which layers want probabilities never depends on the step, so one captured graph serves them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class AttentionStore:
    """Sums the conditional cross-attention maps of down and up layers at one resolution over steps."""

    resolution: int  # maps of layers with resolution^2 queries are kept (16 for SD v1 at 512 px)
    step: int = 0
    layers_seen: int = 0
    _sums: list = field(default_factory=list)  # per stored layer, (P, heads, r, r, keys), summed in place
    _slot: int = 0  # the next stored layer of this step

    def stores(self, is_cross: bool, place: str, num_queries: int) -> bool:
        return is_cross and place != "mid" and num_queries == self.resolution**2

    def wants(self, is_cross: bool, place: str, num_queries: int) -> bool:
        return self.stores(is_cross, place, num_queries)

    def self_replacement(self, place: str, num_queries: int) -> torch.Tensor | None:
        """For a self-attention layer: None, or a 0-dim weight w, and the conditional targets then
        attend with the source's probabilities by w (out = w P_source V + (1 - w) P_target V)."""
        return None

    def to(self, device) -> "AttentionStore":
        return self

    def begin_step(self, index: int) -> None:
        self.step, self._slot = index, 0

    @property
    def cross_maps(self) -> torch.Tensor | None:
        """(P, layers*heads, r, r, keys): the kept maps summed over the steps so far."""
        return torch.cat(self._sums, dim=1) if self._sums else None

    def keep(self, conditional: torch.Tensor, is_cross: bool, place: str, num_queries: int) -> None:
        if self.stores(is_cross, place, num_queries):
            prompts, heads, _, keys = conditional.shape
            maps = conditional.detach().float().reshape(prompts, heads, self.resolution, self.resolution, keys)
            if self._slot == len(self._sums):
                self._sums.append(torch.zeros_like(maps))
            self._sums[self._slot].add_(maps)
            self._slot += 1

    def __call__(self, probabilities, is_cross, place, num_queries):
        self.layers_seen += 1
        self.keep(probabilities[probabilities.shape[0] // 2 :], is_cross, place, num_queries)
        return probabilities


@dataclass
class EditController(AttentionStore):
    """Word swap (`replace_mappers`), refinement (`refine_indices`/`refine_alphas`) and re-weighting
    (`equalizer`), each optional and chained in that order, then mixed with the target's own maps
    by the per-step, per-token `cross_alphas`; self-attention is taken from the source in `self_steps`.

    Self-attention replacement needs no explicit probabilities: P_source V_target is fused attention
    with the source's queries and keys and the target's values. It is weighted by a tensor that is 1
    inside `self_steps` and 0 outside, so every step runs the same code: one CUDA graph.
    """

    cross_alphas: torch.Tensor | None = None  # (T + 1, keys)
    self_steps: range = range(0)
    self_max_queries: int = 0  # only layers this small have their self-attention replaced
    replace_mappers: torch.Tensor | None = None  # (P - 1, keys, keys)
    refine_indices: torch.Tensor | None = None  # (P - 1, keys)
    refine_alphas: torch.Tensor | None = None  # (P - 1, keys)
    equalizer: torch.Tensor | None = None  # (P - 1, keys)
    _step_alphas: torch.Tensor | None = None  # cross_alphas[step], updated in place
    _self_weight: torch.Tensor | None = None  # 1.0 in self_steps, else 0.0, updated in place

    def wants(self, is_cross: bool, place: str, num_queries: int) -> bool:
        return is_cross  # 77 keys: explicit probabilities are cheap here

    def self_replacement(self, place: str, num_queries: int) -> torch.Tensor | None:
        if len(self.self_steps) == 0 or num_queries > self.self_max_queries:
            return None
        return self._self_weight

    def to(self, device) -> "EditController":
        for name in ("cross_alphas", "replace_mappers", "refine_indices", "refine_alphas", "equalizer"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).to(device))
        return self

    def begin_step(self, index: int) -> None:
        super().begin_step(index)
        if self._step_alphas is None:
            self._step_alphas = self.cross_alphas[index].clone()
            self._self_weight = torch.zeros((), device=self.cross_alphas.device)
        else:
            self._step_alphas.copy_(self.cross_alphas[index])
        self._self_weight.fill_(float(index in self.self_steps))

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
        alpha = self._step_alphas.to(base)  # (keys,)
        return edited * alpha + targets * (1 - alpha)

    def __call__(self, probabilities, is_cross, place, num_queries):
        self.layers_seen += 1
        prompts = probabilities.shape[0] // 2
        conditional = probabilities[prompts:]
        base, targets = conditional[0], conditional[1:]
        if is_cross:
            targets = self.edit_cross(base, targets)
        conditional = torch.cat([base[None], targets])
        self.keep(conditional, is_cross, place, num_queries)  # LocalBlend reads the edited maps
        return torch.cat([probabilities[:prompts], conditional])
