"""Classifier-free guidance and the one deterministic DDIM sampling loop, written against the
`denoise` seam (k-diffusion's sampler shape: a plain function of the model, the latents, the
schedule and per-step callbacks).

`denoise(latents, timestep, embeddings) -> prediction` is the only way this touches a model.
Plain reconstruction, negative-prompt inversion, Direct Inversion's offsets and source branch and
Prompt-to-Prompt editing all run through `ddim_sample`; what differs between them is a callback.
"""
from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm

from .rows import split_guidance, stack_for_guidance
from .schedule import Schedule

Denoise = Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]
BeforeStep = Callable[[int], None]  # called with the step's index before the UNet runs
AfterStep = Callable[[int, torch.Tensor], torch.Tensor]  # (index, latents after the step) -> latents


def guide(unconditional_prediction: torch.Tensor, conditional_prediction: torch.Tensor,
          guidance_scale: float) -> torch.Tensor:
    """eps_u + w (eps_c - eps_u) (Ho & Salimans 2022). The only place the formula is written."""
    return unconditional_prediction + guidance_scale * (conditional_prediction - unconditional_prediction)


def guided_prediction(denoise: Denoise, latents, timestep: int, unconditional, conditional, guidance_scale: float):
    """Both halves of guidance in one batched UNet call (`p2p_real.rows` gives the order)."""
    prediction = denoise(stack_for_guidance(latents, latents), timestep, stack_for_guidance(unconditional, conditional))
    return guide(*split_guidance(prediction), guidance_scale)


@torch.no_grad()
def ddim_sample(
    denoise: Denoise,
    latents: torch.Tensor,
    schedule: Schedule,
    conditional: torch.Tensor,
    unconditional: torch.Tensor,
    guidance_scale: float,
    before_step: BeforeStep | None = None,
    after_step: AfterStep | None = None,
    desc: str = "sampling",
    disable: bool = True,
) -> torch.Tensor:
    """Guided sampling with the schedule's step (DDIM, eta = 0; or Euler on a flow model's velocity)
    from x_T, latents (B, C, h, w), to x_0.

    conditional: (B, L, D); unconditional: (steps, B, L, D), one embedding per step, so null-text's
    optimised embeddings go in as they are and a plain empty prompt goes in expanded over the steps.
    `before_step(index)` runs before each UNet call (an edit moves its step counter there);
    `after_step(index, latents)` may replace the latents after each step (offsets, LocalBlend).
    """
    for index, timestep in enumerate(tqdm(schedule.timesteps.tolist(), desc=desc, leave=False, disable=disable)):
        if before_step is not None:
            before_step(index)
        prediction = guided_prediction(denoise, latents, timestep, unconditional[index], conditional, guidance_scale)
        latents = schedule.step(prediction, timestep, latents)
        if after_step is not None:
            latents = after_step(index, latents)
    return latents


def add_offsets(offsets: torch.Tensor, rows: slice = slice(None)) -> AfterStep:
    """An `after_step` callback: add offsets[index] (steps, B, C, h, w) to `rows` of the latents
    (Direct Inversion's per-step corrections, Ju et al. 2024)."""

    def after_step(index: int, latents: torch.Tensor) -> torch.Tensor:
        corrected = latents.clone()
        corrected[rows] += offsets[index]
        return corrected

    return after_step
