"""Edit an inverted photo by changing its caption: plan, one batched sampling pass, decode.

Rows of the pass: the unconditional ones, the source (which retraces the photo), then one row per
target; N edits of one inversion cost one pass with N + 1 prompts instead of N passes with 2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..artifacts import Inversion, check_model
from ..errors import OptionError
from ..images import to_uint8
from ..models import Model
from ..rows import split_source
from ..sampling import add_offsets, ddim_sample
from ..schedule import Schedule
from .control import edit_plan
from .controlled import controlled
from .local_blend import LocalBlend
from .options import EditOptions
from .painted_mask import Mask, latent_regions
from .plan import EditPlan


@dataclass
class EditResult:
    source: torch.Tensor  # (H, W, 3) uint8: the photo
    reconstruction: torch.Tensor  # (H, W, 3) uint8: the source branch of this run
    edited: torch.Tensor  # (H, W, 3) uint8
    # (2, 1, r, r, keys): source and target attention, averaged over heads and layers, summed over steps
    cross_maps: torch.Tensor
    # (1, h, w): the region LocalBlend kept the edit to at the last step (words, painted mask), if any
    mask: torch.Tensor | None
    kind: str


def edit(model: Model, inversion: Inversion, targets: str | Sequence[str],
         options: EditOptions | Sequence[EditOptions] = EditOptions(), mask: Mask | Sequence[Mask | None] | None = None,
         progress: bool = False) -> EditResult | list[EditResult]:
    """Edit `inversion`'s photo so that it shows `targets` instead of its caption.

    One target (a string) gives one `EditResult`; a list of targets gives a list, all edited in one
    batched sampling pass, with one `EditOptions` for all of them or one each. `mask` keeps the edit
    inside a painted region (painted_mask.py): a float tensor (H, W) in [0, 1] or a PIL image, white
    = edit, lined up with the photo; one for all targets, or a list with one (or None) each. A bad
    argument raises `OptionError` (a ValueError) naming it.
    """
    check_model(inversion, model, inversion.source_path or "the inversion")
    single = isinstance(targets, str)
    targets = [targets] if single else targets
    if (not isinstance(targets, (list, tuple)) or not targets
            or not all(isinstance(target, str) and target.strip() for target in targets)):
        raise OptionError("targets", f"expected a caption or a non-empty list of captions (non-empty text), "
                                     f"got {targets!r:.120}")
    options = [options] * len(targets) if isinstance(options, EditOptions) else options
    if not isinstance(options, (list, tuple)) or not all(isinstance(option, EditOptions) for option in options):
        raise OptionError("options", f"expected an EditOptions or a list of them, got {options!r:.120}")
    if len(options) != len(targets):
        raise OptionError("options", f"{len(targets)} targets but {len(options)} EditOptions; "
                                     f"give one for all or one each")
    source = inversion.prompt
    regions = latent_regions(mask, len(targets), tuple(inversion.image.shape[:2]),
                             tuple(inversion.noise_latents.shape[-2:]))
    plan = edit_plan(model, source, targets, options, inversion.num_steps, regions)
    offsets = inversion.latent_offsets
    sampled = sample_plan(model, plan, inversion.noise_latents, inversion.null_text_embeddings,
                          model.embed([source, *targets]), model.schedule(inversion.num_steps),
                          inversion.guidance_scale, None if offsets is None else offsets[:, None], disable=not progress)
    latents, cross_maps, masks = sampled.latents, sampled.cross_maps, sampled.masks
    images = to_uint8(model.decode(latents))
    (reconstruction,), edited = split_source(images)
    source_maps, target_maps = split_source(cross_maps)
    results = [
        EditResult(source=inversion.image, reconstruction=reconstruction, edited=edited[row],
                   cross_maps=torch.cat([source_maps, target_maps[row : row + 1]]),
                   mask=None if masks is None or not plan.blend.confined[row] else masks[row], kind=plan.kinds[row])
        for row in range(len(targets))
    ]
    return results[0] if single else results


@dataclass
class SampledEdit:
    latents: torch.Tensor  # (P, C, h, w): row 0 the source branch, then one row per target
    cross_maps: torch.Tensor  # (P, 1, r, r, keys), averaged over heads and layers, summed over the steps
    masks: torch.Tensor | None  # (N, 1, h, w): LocalBlend's last masks, when the plan blends or has painted masks


def sample_plan(model: Model, plan: EditPlan, noise_latents: torch.Tensor, null_text_embeddings: torch.Tensor,
                prompt_embeddings: torch.Tensor, schedule: Schedule, guidance_scale: float,
                latent_offsets: torch.Tensor | None = None, disable: bool = True) -> SampledEdit:
    """The one sampling loop under `plan`: noise_latents (C, h, w); null_text_embeddings (T, L, D);
    prompt_embeddings (P, L, D), source first; latent_offsets (T, 1, C, h, w) for the source row."""
    prompts = prompt_embeddings.shape[0]
    null_text = null_text_embeddings.to(model.device)[:, None].expand(-1, prompts, -1, -1)  # (T, P, L, D)
    offsets = None if latent_offsets is None else latent_offsets.to(model.device)
    with controlled(model, plan) as denoise:
        blend = None if denoise.plan.blend is None else LocalBlend(denoise.plan.blend, lambda: denoise.state.cross_maps)
        latents = ddim_sample(
            denoise, noise_latents.to(model.device)[None].expand(prompts, -1, -1, -1), schedule, prompt_embeddings,
            null_text, guidance_scale, before_step=denoise.state.begin_step, after_step=after_step(offsets, blend),
            desc="editing", disable=disable,
        )
    return SampledEdit(latents, denoise.state.cross_maps, None if blend is None else blend.last_masks)


def after_step(offsets: torch.Tensor | None, blend: LocalBlend | None):
    """Direct Inversion's offsets on the source row, then LocalBlend: so the background the targets
    inherit is the corrected source, the photo's own trajectory (PnPInversion adds it after)."""
    correct = None if offsets is None else add_offsets(offsets, rows=slice(0, 1))
    if correct is None or blend is None:
        return correct or blend

    def both(index: int, latents: torch.Tensor) -> torch.Tensor:
        return blend(index, correct(index, latents))

    return both
