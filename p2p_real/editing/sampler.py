"""The two-branch guided DDIM loop: the source prompt retraces the inverted photo while the
target prompts run beside it in the same batch, under a controller."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..sampling import Denoise, guided_prediction
from ..schedule import Schedule, ddim_step
from .attention import controlled
from .local_blend import LocalBlend


@torch.no_grad()
def edit_sample(
    unet,
    denoise: Denoise,
    noise_latents: torch.Tensor,
    null_text_embeddings: torch.Tensor,
    prompt_embeddings: torch.Tensor,
    schedule: Schedule,
    guidance_scale: float,
    controller,
    blend: LocalBlend | None = None,
    latent_offsets: torch.Tensor | None = None,
    disable: bool = True,
) -> torch.Tensor:
    """noise_latents (C, h, w): x_T; null_text_embeddings (T, L, D); prompt_embeddings (P, L, D),
    source first; latent_offsets (T, C, h, w): Direct Inversion's corrections of the source branch.
    Returns the final latents (P, C, h, w); row 0 reconstructs the photo."""
    prompts = prompt_embeddings.shape[0]
    latents = noise_latents[None].expand(prompts, -1, -1, -1)
    controller.to(latents.device)
    if blend is not None:
        blend.to(latents.device)
    with controlled(unet, controller):
        for index, timestep in enumerate(tqdm(schedule.timesteps.tolist(), desc="editing", leave=False, disable=disable)):
            controller.begin_step(index)
            unconditional = null_text_embeddings[index][None].expand(prompts, -1, -1)
            prediction = guided_prediction(denoise, latents, timestep, unconditional, prompt_embeddings, guidance_scale)
            latents = ddim_step(schedule, prediction, timestep, latents)
            if latent_offsets is not None:
                # Before the blend (PnPInversion adds it after), so the background the target
                # inherits is the corrected source, which is the photo's own trajectory.
                latents = torch.cat([latents[:1] + latent_offsets[index][None], latents[1:]])
            if blend is not None:
                latents = blend(latents, index, controller.cross_maps)
    if controller.layers_seen == 0:  # the reference's silent failure mode: nothing was hooked
        raise RuntimeError("no attention layer reached the controller; the edit would equal plain generation")
    return latents
