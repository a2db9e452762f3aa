"""LocalBlend (Hertz et al. 2023, sec. 3.3): keep the source's latents outside the region that the
blend words' cross-attention covers, so an edit stays local."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LocalBlend:
    """word_weights: (P, length), 1 at the blend words' tokens in each prompt (source first)."""

    word_weights: torch.Tensor
    start_step: int  # blend from this step on (int(0.2 T) in the reference)
    threshold: float = 0.3
    last_mask: torch.Tensor | None = None  # (P, 1, h, w), the mask of the latest blend, for inspection

    def mask(self, cross_maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """cross_maps: (P, layers*heads, r, r, length) attention summed over steps -> (P, 1, h, w)."""
        weights = self.word_weights.to(cross_maps)[:, None, None, None, :]
        maps = (cross_maps * weights).sum(-1).mean(1, keepdim=True)  # (P, 1, r, r)
        maps = F.max_pool2d(maps, kernel_size=3, stride=1, padding=1)
        maps = F.interpolate(maps, size=size)
        maps = maps / maps.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)
        mask = maps > self.threshold
        return (mask[:1] | mask).to(cross_maps.dtype)  # each target's region, united with the source's

    def to(self, device) -> "LocalBlend":
        self.word_weights = self.word_weights.to(device)  # once, not a host copy every step
        return self

    def __call__(self, latents: torch.Tensor, step: int, cross_maps: torch.Tensor | None) -> torch.Tensor:
        """latents: (P, C, h, w) after sampling step `step`; the source branch (row 0) is never changed."""
        if step < self.start_step or cross_maps is None:
            return latents
        self.last_mask = self.mask(cross_maps, latents.shape[2:])
        return latents[:1] + self.last_mask.to(latents.dtype) * (latents - latents[:1])
