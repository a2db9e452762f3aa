"""Photos in, `Inversion` records out: encode, DDIM-invert, run the method, reconstruct, measure.

This composes the stages (the model, `inversion/`'s algorithms, `eval/`'s pixel metrics) and sits
above them, so that no stage imports another stage's results upward.
"""
from __future__ import annotations

from PIL import Image

from .artifacts import Inversion
from .defaults import DEFAULT_METHOD, MAX_GUIDANCE
from .errors import OptionError, check_number
from .eval.metrics import reconstruction_metrics
from .images import to_tensor, to_uint8
from .inversion.ddim import ddim_invert
from .inversion.methods import METHODS, reconstruct
from .inversion.options import NullTextOptions
from .models import Model


def invert(
    model: Model,
    images: list[Image.Image],
    prompts: list[str],
    method: str = DEFAULT_METHOD,
    num_steps: int | None = None,
    guidance_scale: float | None = None,
    options: NullTextOptions = NullTextOptions(),
    source_paths: list[str] | None = None,
    progress: bool = False,
) -> list[Inversion]:
    """Invert a batch of RGB photos (already at the model's resolution) with their captions.

    `method` is a key of `p2p_real.inversion.methods.METHODS`: `null-text` (Mokady et al. 2023,
    optimised null embeddings), `ddim` (the plain empty-prompt embedding; fast, but guided sampling
    drifts), `negative-prompt` (Miyake et al. 2023) or `direct` (Ju et al. 2024, per-step offsets).
    `num_steps` and `guidance_scale` default to the model family's (50 and 7.5 for SD v1 and SDXL, as
    the papers; 28 and 7.0 for SD3, as its pipeline). A bad argument raises `OptionError` (a
    ValueError) naming it, before any work is done.
    """
    num_steps = model.text.default_steps if num_steps is None else num_steps
    guidance_scale = model.text.default_guidance if guidance_scale is None else guidance_scale
    check_arguments(model, images, prompts, method, num_steps, guidance_scale, options, source_paths)
    schedule = model.schedule(num_steps)
    pixels = to_tensor(images).to(model.device)
    latents = model.encode(pixels)
    conditional = model.embed(list(prompts))
    unconditional = model.empty_prompt(len(prompts))
    trajectory = ddim_invert(model.denoise, latents, conditional, schedule, disable=not progress)
    result = METHODS[method](model.denoise, trajectory, conditional, unconditional, schedule, guidance_scale, options,
                             not progress)
    reconstruction_latents = reconstruct(model.denoise, trajectory[-1], conditional, result, schedule, guidance_scale,
                                         not progress)
    reconstructions = model.decode(reconstruction_latents)
    metrics = reconstruction_metrics(reconstructions.cpu(), pixels.cpu())
    latent_errors = (reconstruction_latents - latents).pow(2).flatten(1).mean(1).tolist()
    originals, reconstructed = to_uint8(pixels), to_uint8(reconstructions)
    return [
        Inversion(
            prompt=prompts[index],
            noise_latents=trajectory[-1, index].float().cpu(),
            null_text_embeddings=result.null_text_embeddings[:, index].float().cpu(),
            latent_offsets=None if result.latent_offsets is None else result.latent_offsets[:, index].float().cpu(),
            image=originals[index],
            reconstruction=reconstructed[index],
            method=method,
            num_steps=num_steps,
            guidance_scale=guidance_scale,
            model_name=model.name,
            model_fingerprint=model.fingerprint,
            model_loras=[lora.as_dict() for lora in model.loras],
            scheduler_config=dict(model.scheduler_config),
            schedule=schedule.record(),
            options=METHODS[method].record(options, model.text.null_text_record),
            metrics={**metrics[index], "latent_mse": latent_errors[index]},
            diagnostics={name: values[:, index].tolist() for name, values in result.diagnostics.items()},
            source_path=str(source_paths[index]) if source_paths else "",
        )
        for index in range(len(images))
    ]


def check_arguments(model: Model, images, prompts, method, num_steps, guidance_scale, options, source_paths) -> None:
    """invert()'s arguments, each refused with an OptionError in the Python API's own terms."""
    if method not in METHODS:
        raise OptionError("method", f"expected one of {', '.join(METHODS)}, got {method!r}")
    for name, values in (("images", images), ("prompts", prompts)):
        if not isinstance(values, (list, tuple)) or not values:
            raise OptionError(name, f"expected a non-empty list, one item per photo; got {values!r:.80}")
    for name, values in (("prompts", prompts), ("source_paths", source_paths)):
        if values is not None and (not isinstance(values, (list, tuple)) or len(values) != len(images)):
            raise OptionError(name, f"expected a list of {len(images)}, one per image; got {values!r:.80}")
    size = model.resolution
    for index, image in enumerate(images):
        if not isinstance(image, Image.Image) or image.mode != "RGB" or image.size != (size, size):
            is_image = isinstance(image, Image.Image)
            found = f"a {image.mode} image of {image.size[0]}x{image.size[1]}" if is_image else type(image).__name__
            raise OptionError("images", f"images[{index}] is {found}, not the {size}x{size} RGB photo this model "
                                        f"takes; read photos with load_image(path, model.resolution)")
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise OptionError("prompts", f"prompts[{index}] is {prompt!r}; give each photo's caption as non-empty text")
    most = model.scheduler_config.get("num_train_timesteps", 1000)
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or not 1 <= num_steps <= most:
        raise OptionError("num_steps", f"expected a whole number of sampling steps from 1 to {most}, got {num_steps!r}")
    check_number("guidance_scale", guidance_scale, 0.0, MAX_GUIDANCE, above_low=True)
    if not isinstance(options, NullTextOptions):
        raise OptionError("options", f"expected a NullTextOptions, got {type(options).__name__}")
