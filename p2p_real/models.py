"""A Stable Diffusion model as inversion and editing see it: `encode`, `decode`, `embed` and
`denoise` (k-diffusion's model-wrapper idea). `Model` is the one place that calls diffusers'
modules; what differs between model families (SD 1.x/2.x, SDXL) is its text adapter,
p2p_real/text_encoders.py. Loading: p2p_real/loading.py; random-weight builds: random_models.py.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

from .attention import FusedAttention, keep_text_projections_in_fp32
from .errors import NumericalError
from .fingerprints import weights_fingerprint
from .graphs import UNetRunner
from .schedule import Schedule
from .text_encoders import ClipText, SdxlText, full_precision, text_of_pipeline, token_ids


@dataclass
class Model:
    """The parts of an SD pipeline that inversion and editing need, plus where they came from.

    `upcast_vae`: keep the VAE in float32 whatever the UNet's dtype, as diffusers' SDXL pipeline does
    for a VAE whose config says `force_upcast` (SDXL's overflows in float16). `offload_text`: the
    text encoders wait in CPU memory and visit the model's device for each `embed` (SDXL's take
    1.6 GB of a 16 GB card; the visit costs a copy, a fraction of a second per batch of prompts)."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text: ClipText | SdxlText
    scheduler_config: dict
    name: str
    fingerprint: str = field(default="")
    upcast_vae: bool = False
    offload_text: bool = False
    loras: tuple = ()  # the LoraRecords fused into the weights, in order (loras.py); the fingerprint covers them
    runner: UNetRunner = field(init=False, repr=False)  # how the UNet runs: eagerly, graphed, compiled

    def __post_init__(self):
        for part in self.parts:
            part.requires_grad_(False).eval()
        self.unet.set_attn_processor(FusedAttention())  # SDPA that takes the embedding in any precision
        self.runner = UNetRunner(self.unet, self.text.unet_inputs, self.vae_scale)
        if not self.fingerprint:
            self.fingerprint = weights_fingerprint(self.parts)

    @classmethod
    def from_pipeline(cls, pipeline, name: str | None = None) -> "Model":
        """A loaded diffusers SD / SDXL pipeline's modules as they are, not copied: its dtype, device and
        LoRA adapters stay; its scheduler's config gives the DDIM schedule. Its UNet gets p2p-real's
        attention processor (`pipeline.unet.set_default_attn_processor()` restores diffusers' own)."""
        text = text_of_pipeline(pipeline)
        return cls(pipeline.unet, pipeline.vae, text, dict(pipeline.scheduler.config),
                   name=name or pipeline.config.get("_name_or_path") or type(pipeline).__name__,
                   upcast_vae=text.upcasts_vae and bool(pipeline.vae.config.force_upcast))

    @property
    def parts(self) -> tuple[torch.nn.Module, ...]:
        return (self.unet, self.vae, *self.text.encoders)

    @property
    def family(self) -> str:
        """The family, "sd" (SD 1.x / 2.x) or "sdxl": read from the weights' configs when loaded, never from a name."""
        return self.text.family

    @property
    def tokenizer(self):
        """The tokenizer whose tokens the UNet's cross-attention keys are (the first, for SDXL)."""
        return self.text.tokenizer

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def vae_scale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def resolution(self) -> int:
        """Side of the square images the model was trained on (512 for SD v1)."""
        return self.unet.config.sample_size * self.vae_scale

    @property
    def max_tokens(self) -> int:
        return self.tokenizer.model_max_length

    def schedule(self, num_steps: int) -> Schedule:
        return Schedule.from_scheduler_config(self.scheduler_config, num_steps)

    def to(self, device=None, dtype=None) -> "Model":
        for part in self.parts:
            upcast = part is self.vae and self.upcast_vae and dtype is not None
            part_dtype = torch.promote_types(dtype, torch.float32) if upcast else dtype  # float64 stays float64
            if part_dtype not in (None, part.dtype):
                cast_floating_point(part, part_dtype)  # before the move: a GPU never holds both copies
            part.to(device="cpu" if self.offload_text and part in self.text.encoders else device)
        if dtype in (torch.float16, torch.bfloat16):
            keep_text_projections_in_fp32(self.unet)  # see p2p_real/attention.py for why
        return self

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> latents: the VAE posterior mean, scaled (not a sample)."""
        pixels = (images * 2 - 1).to(self.device, self.vae.dtype)
        mean = torch.cat([self.vae.encode(chunk).latent_dist.mean for chunk in vae_chunks(pixels, pixels.shape[-2:])])
        return check_finite(full_precision(mean), "encoding the photo", self.vae.dtype) * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> (B, 3, H, W) float32 in [0, 1]."""
        latents = (latents / self.vae.config.scaling_factor).to(self.vae.dtype)
        size = (latents.shape[-2] * self.vae_scale, latents.shape[-1] * self.vae_scale)
        pixels = torch.cat([self.vae.decode(chunk).sample.float() for chunk in vae_chunks(latents, size)])
        return ((check_finite(pixels, "decoding the latents", self.vae.dtype) + 1) / 2).clamp(0, 1)

    def token_ids(self, prompts: list[str]) -> torch.Tensor:
        """Token ids padded to the encoder's length; a prompt that does not fit is an error."""
        return token_ids(self.tokenizer, prompts)

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> (B, L, D) float32: the tensor `denoise` takes (text_encoders.py says what is in it)."""
        with self.text_encoders_on_device():
            return self.text.embed(list(prompts), self.device)

    def empty_prompt(self, count: int) -> torch.Tensor:
        """The unconditional embedding as the family's own pipeline makes it, (count, L, D) float32."""
        return self.text.empty(count, self.device, self.embed)

    @contextmanager
    def text_encoders_on_device(self):
        """The text encoders on the model's device for the block; with `offload_text`, back after it."""
        if not self.offload_text:
            yield
            return
        for encoder in self.text.encoders:
            encoder.to(self.device)
        try:
            yield
        finally:
            for encoder in self.text.encoders:
                encoder.to("cpu")

    def denoise(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        """The UNet's raw prediction (epsilon or v), in float32 for a half-precision model, so that the
        schedule's arithmetic and losses stay in full precision (float64 stays float64). The
        embeddings go in as they are: a half-precision UNet reads them with float32 projections.
        Replayed from CUDA graphs once `use_cuda_graphs()` was called (graphs.py)."""
        return self.runner(latents, timestep, embeddings)

    def use_cuda_graphs(self, compile: bool = False) -> "Model":
        """Replay the UNet from CUDA graphs (captured per batch shape): far fewer launches per step;
        `compile`: null-text's passes with gradients through torch.compile (graphs.UNetRunner)."""
        if self.device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device; this model is on " + str(self.device))
        self.runner.use_cuda_graphs(compile)
        return self

    def free_gpu_memory(self) -> None:
        """Let go of what work that ran out of memory leaves behind, before it is retried smaller: the
        CUDA graphs captured for the larger shapes (each keeps a private pool) and cached blocks."""
        self.runner.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def save(self, folder: str | os.PathLike) -> None:
        """Write a diffusers-layout folder that `load_model(folder)` reads back."""
        folder = Path(folder)
        self.unet.save_pretrained(folder / "unet")
        self.vae.save_pretrained(folder / "vae")
        self.text.save(folder)  # with the family's own files (SDXL's model_index.json)
        DDIMScheduler.from_config(self.scheduler_config).save_pretrained(folder / "scheduler")


FLOATING_POINT_CASTS = {torch.float16: "half", torch.bfloat16: "bfloat16", torch.float32: "float",
                        torch.float64: "double"}


def cast_floating_point(part: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast a part's floating-point weights, as `part.to(dtype=...)` does. diffusers' `ModelMixin.to`
    warns that "modules should be kept in float32" whenever a dtype is passed, even for models that
    keep none (its `_keep_in_fp32_modules or []` is never None): SD's UNet and VAE keep none, so
    they are cast with torch's own floating-point casts, which leave integer buffers alone too."""
    if getattr(part, "_keep_in_fp32_modules", None):  # a model that does keep some: let the library handle it
        part.to(dtype=dtype)
    else:
        getattr(part, FLOATING_POINT_CASTS[dtype])()


VAE_PIXELS_PER_CALL = 1024 * 1024  # one SDXL image, four SD v1 ones: a float32 VAE at 1024 px takes ~3 GB a photo


def vae_chunks(batch: torch.Tensor, image_size) -> tuple[torch.Tensor, ...]:
    """The batch in chunks of at most VAE_PIXELS_PER_CALL pixels (at least one image): the VAE's
    activations at full resolution, not the UNet, set the peak memory of a 1024 px job."""
    per_call = max(1, VAE_PIXELS_PER_CALL // (image_size[0] * image_size[1]))
    return batch.split(per_call)


def check_finite(values: torch.Tensor, doing: str, dtype: torch.dtype) -> torch.Tensor:
    """`values`, or a NumericalError: a VAE that overflows must never hand on NaNs silently."""
    if not torch.isfinite(values).all():
        raise NumericalError(f"the VAE overflowed in {str(dtype).replace('torch.', '')} while {doing} (NaN or inf); "
                             f"keep it in float32 (a VAE config with force_upcast, or --dtype float32)")
    return values
