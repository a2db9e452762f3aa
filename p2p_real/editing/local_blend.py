"""LocalBlend (Hertz et al. 2023, sec. 3.3): keep the source's latents outside the region that the
blend words' cross-attention covers, so an edit stays local."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..rows import join_source, split_source
from .plan import BlendPlan


def attention_mask(maps: torch.Tensor, word_weights: torch.Tensor, thresholds: torch.Tensor,
                   size: tuple[int, int]) -> torch.Tensor:
    """maps: (N, 1, r, r, keys) averaged over heads and layers, summed over steps; word_weights: (N, keys)
    -> (N, 1, h, w) bool: the words' maps averaged over heads and layers, 3x3 max-pooled, resized, over 0.3
    of their max."""
    maps = (maps * word_weights.to(maps)[:, None, None, None, :]).sum(-1).mean(1, keepdim=True)  # (N, 1, r, r)
    maps = F.max_pool2d(maps, kernel_size=3, stride=1, padding=1)
    maps = F.interpolate(maps, size=size)
    maps = maps / maps.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    return maps > thresholds.to(maps)[:, None, None, None]


def blend_masks(blend: BlendPlan, cross_maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 1, h, w) float: each target's region, united with the source's region of its own word."""
    source_maps, target_maps = split_source(cross_maps)
    source = attention_mask(source_maps.expand_as(target_maps), blend.word_weights[:, 0], blend.thresholds, size)
    target = attention_mask(target_maps, blend.word_weights[:, 1], blend.thresholds, size)
    return (source | target).to(cross_maps.dtype)


class LocalBlend:
    """An `after_step` callback of `ddim_sample`: latents (P, C, h, w), the source first; the source
    row is never changed. `cross_maps` reads the maps summed so far (EditState.cross_maps), the edit's
    maps after the controller's edit, as the reference reads them. A target's region is its painted
    mask from the first step, intersected with its words' mask from its start step on."""

    def __init__(self, blend: BlendPlan, cross_maps):
        self.blend, self.cross_maps = blend, cross_maps
        device = blend.word_weights.device  # per-target switches live on the device: no copy per step
        self.enabled = torch.tensor(blend.enabled, device=device)[:, None, None, None]
        self.start_steps = torch.tensor(blend.start_steps, device=device)[:, None, None, None]
        self.painted = torch.tensor(blend.painted or (False,) * len(blend.enabled), device=device)[:, None, None, None]
        self.last_masks: torch.Tensor | None = None  # (N, 1, h, w), for inspection

    def __call__(self, index: int, latents: torch.Tensor) -> torch.Tensor:
        words = any(enabled and index >= start for enabled, start in zip(self.blend.enabled, self.blend.start_steps))
        maps = self.cross_maps() if words else None
        if maps is None and not any(self.blend.painted):
            return latents
        masks, confined = self.painted_masks(latents), self.painted
        if maps is not None:
            with_words = self.enabled & (self.start_steps <= index)  # (N, 1, 1, 1)
            word_masks = blend_masks(self.blend, maps, latents.shape[2:]).to(latents.dtype)
            masks = masks * torch.where(with_words, word_masks, torch.ones_like(word_masks))  # both must say "edit"
            confined = confined | with_words
        self.last_masks = masks
        source, targets = split_source(latents)
        blended = source + masks * (targets - source)  # exactly the source where the mask is 0
        return join_source(source, torch.where(confined, blended, targets))

    def painted_masks(self, latents: torch.Tensor) -> torch.Tensor:
        """(N, 1, h, w): the painted masks, ones where no target has one."""
        if self.blend.painted_masks is None:
            return latents.new_ones(latents.shape[0] - 1, 1, *latents.shape[2:])
        return self.blend.painted_masks.to(latents.dtype)
