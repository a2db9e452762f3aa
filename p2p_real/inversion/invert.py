"""Photos in, `Inversion` records out: encode, DDIM-invert, optimise, reconstruct, measure."""
from __future__ import annotations

from dataclasses import asdict

from PIL import Image

from ..artifacts import Inversion
from ..eval.metrics import reconstruction_metrics
from ..images import to_tensor, to_uint8
from ..models import Model
from ..sampling import ddim_sample
from .ddim import ddim_invert
from .direct import direct_offsets
from .negative_prompt import negative_prompt_embeddings
from ..defaults import INVERSION_METHODS as METHODS
from .null_text import null_text_optimize
from .options import NullTextOptions


def invert(
    model: Model,
    images: list[Image.Image],
    prompts: list[str],
    method: str = "null-text",
    num_steps: int = 50,
    guidance_scale: float = 7.5,
    options: NullTextOptions = NullTextOptions(),
    source_paths: list[str] | None = None,
    progress: bool = False,
) -> list[Inversion]:
    """Invert a batch of RGB photos (already at the model's resolution) with their captions.

    `null-text`: Mokady et al. 2023, optimised null embeddings. `ddim`: the plain empty-prompt
    embedding at every step (fast, but guided sampling drifts away from the photo).
    `negative-prompt`: Miyake et al. 2023, the prompt's embedding as the null one. `direct`: Ju et
    al. 2024, the plain embedding plus per-step latent offsets for the source branch.
    """
    if method not in METHODS:
        raise ValueError(f"unknown inversion method {method!r}; choose one of {', '.join(METHODS)}")
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    schedule = model.schedule(num_steps)
    pixels = to_tensor(images).to(model.device)
    latents = model.encode(pixels)
    conditional = model.embed(list(prompts))
    unconditional = model.embed([""] * len(prompts))
    trajectory = ddim_invert(model.denoise, latents, conditional, schedule, disable=not progress)
    method_options: dict = {}
    latent_offsets = None
    if method == "null-text":
        result = null_text_optimize(
            model.denoise, trajectory, conditional, unconditional, schedule, guidance_scale, options, disable=not progress
        )
        null_text_embeddings, reconstruction_latents = result.null_text_embeddings, result.reconstruction_latents
        method_options = asdict(options)
    elif method == "direct":
        null_text_embeddings = unconditional.expand(num_steps, -1, -1, -1)
        latent_offsets = direct_offsets(model.denoise, trajectory, conditional, unconditional, schedule, guidance_scale)
        reconstruction_latents = trajectory[0]  # the offsets land the source branch on every pivot
    else:
        if method == "negative-prompt":
            null_text_embeddings = negative_prompt_embeddings(conditional, num_steps)
        else:
            null_text_embeddings = unconditional.expand(num_steps, -1, -1, -1)
        reconstruction_latents = ddim_sample(
            model.denoise, trajectory[-1], conditional, null_text_embeddings, schedule, guidance_scale, disable=not progress
        )
    reconstructions = model.decode(reconstruction_latents)
    metrics = reconstruction_metrics(reconstructions.cpu(), pixels.cpu())
    latent_errors = (reconstruction_latents - latents).pow(2).flatten(1).mean(1).tolist()
    originals, reconstructed = to_uint8(pixels), to_uint8(reconstructions)
    return [
        Inversion(
            prompt=prompts[index],
            noise_latents=trajectory[-1, index].float().cpu(),
            null_text_embeddings=null_text_embeddings[:, index].float().cpu(),
            latent_offsets=None if latent_offsets is None else latent_offsets[:, index].float().cpu(),
            image=originals[index],
            reconstruction=reconstructed[index],
            method=method,
            num_steps=num_steps,
            guidance_scale=guidance_scale,
            model_name=model.name,
            model_fingerprint=model.fingerprint,
            scheduler_config=dict(model.scheduler_config),
            options=method_options,
            metrics={**metrics[index], "latent_mse": latent_errors[index]},
            source_path=str(source_paths[index]) if source_paths else "",
        )
        for index in range(len(images))
    ]
