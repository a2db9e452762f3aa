"""The inversion methods as a table of functions that read alike (k-diffusion's samplers' manner):

    method(denoise, trajectory, conditional, unconditional, schedule, guidance_scale, options, disable)
        -> MethodResult(null_text_embeddings, latent_offsets, diagnostics)

`METHODS[name]` is an `InversionMethod`: the function and what callers would otherwise ask by name
(whether it runs the UNet backward, which settings its artifact records).

Each starts from the same DDIM-inversion trajectory and says how guided sampling should retrace it:
with which unconditional embedding at each step, and with which latent correction. `reconstruct`
then samples for every method alike, so no method's reconstruction is assumed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from ..sampling import Denoise, add_offsets, ddim_sample
from ..schedule import Schedule
from .direct import direct_offsets
from .null_text import null_text_optimize
from .options import NullTextOptions


@dataclass
class MethodResult:
    null_text_embeddings: torch.Tensor  # (steps, B, L, D): the unconditional embedding at each sampling step
    latent_offsets: torch.Tensor | None = None  # (steps, B, C, h, w): added to the latents after each step
    diagnostics: dict[str, torch.Tensor] = field(default_factory=dict)  # per step and photo: (steps, B)


def plain(denoise, trajectory, conditional, unconditional, schedule, guidance_scale, options,
          disable=True) -> MethodResult:
    """`ddim`: the empty prompt's embedding at every step. Fast; guided sampling drifts from the photo."""
    return MethodResult(unconditional.expand(schedule.num_steps, -1, -1, -1))


def negative_prompt(denoise, trajectory, conditional, unconditional, schedule, guidance_scale, options,
                    disable=True) -> MethodResult:
    """Miyake et al. 2023: the prompt's own embedding as the unconditional one at every step, so
    guidance collapses to the conditional prediction, which retraces DDIM inversion to first order."""
    return MethodResult(conditional.expand(schedule.num_steps, -1, -1, -1))


def direct(denoise, trajectory, conditional, unconditional, schedule, guidance_scale, options,
           disable=True) -> MethodResult:
    """Ju et al. 2024: the empty prompt's embedding, plus per-step offsets back onto the trajectory."""
    offsets = direct_offsets(denoise, trajectory, conditional, unconditional, schedule, guidance_scale)
    return MethodResult(unconditional.expand(schedule.num_steps, -1, -1, -1), latent_offsets=offsets)


def null_text(denoise, trajectory, conditional, unconditional, schedule, guidance_scale,
              options: NullTextOptions = NullTextOptions(), disable=True) -> MethodResult:
    """Mokady et al. 2023: one optimised unconditional embedding per step. Diagnostics: each step's
    last loss, its early-stop threshold, whether the loss got below it, and the Adam steps it took."""
    result = null_text_optimize(denoise, trajectory, conditional, unconditional, schedule, guidance_scale, options,
                                disable)
    thresholds = torch.tensor([options.early_stop_epsilon + index * options.early_stop_slope
                               for index in range(schedule.num_steps)])
    losses = result.final_losses.float().cpu()
    return MethodResult(result.null_text_embeddings, diagnostics={
        "final_loss": losses,
        "early_stop_threshold": thresholds[:, None].expand_as(losses),
        "reached_threshold": losses < thresholds[:, None],
        "inner_steps": result.inner_steps.cpu(),
    })


@dataclass(frozen=True)
class InversionMethod:
    """One row of the table: the method, and the facts about it that callers need."""

    run: Callable[..., MethodResult]
    needs_backward: bool = False  # runs the UNet backward: memory per photo, and what torch.compile speeds up
    takes_options: bool = False  # shaped by NullTextOptions, which its artifact then records

    def __call__(self, *arguments, **keywords) -> MethodResult:
        return self.run(*arguments, **keywords)

    def record(self, options: NullTextOptions, family_record: dict) -> dict:
        """The settings an artifact of this method records; `family_record`: what the model family
        adds to an optimised null text (its text adapter's `null_text_record`)."""
        return {**asdict(options), **family_record} if self.takes_options else {}


METHODS: dict[str, InversionMethod] = {
    "null-text": InversionMethod(null_text, needs_backward=True, takes_options=True),
    "ddim": InversionMethod(plain),
    "negative-prompt": InversionMethod(negative_prompt),
    "direct": InversionMethod(direct),
}


def reconstruct(denoise: Denoise, noise_latents: torch.Tensor, conditional: torch.Tensor, result: MethodResult,
                schedule: Schedule, guidance_scale: float, disable: bool = True) -> torch.Tensor:
    """Guided DDIM sampling from x_T (B, C, h, w) as `result` prescribes: the same loop for every method."""
    after_step = None if result.latent_offsets is None else add_offsets(result.latent_offsets)
    return ddim_sample(denoise, noise_latents, schedule, conditional, result.null_text_embeddings, guidance_scale,
                       after_step=after_step, desc="reconstructing", disable=disable)
