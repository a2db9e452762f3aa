"""The adapter of a model family: prompts -> the one embedding tensor that `denoise` takes, that
tensor -> the denoiser's keyword arguments, and the family's schedule, attention processor and files.
The loops, null-text's optimiser, guidance, batching and the artifacts only ever see the tensor, so a
model family is an adapter here, not a fork there.

- SD 1.x / 2.x (`ClipText`): one CLIP encoder's last hidden state, (B, 77, D).
- SDXL (`SdxlText`, Podell et al. 2023): two CLIP encoders' penultimate hidden states side by side,
  (B, 77, 768 + 1280), and the second encoder's pooled projection (B, 1280). The pooled vector
  rides along as one extra, zero-padded row, (B, 78, 2048), and `denoiser_inputs` splits it off again
  together with the size conditioning (`add_time_ids`).
- SD3 / SD3.5: p2p_real/sd3_text.py (a rectified-flow transformer, its schedule in flow_schedule.py).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import diffusers
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from .attention import FusedAttention
from .defaults import DEFAULT_GUIDANCE, DEFAULT_STEPS
from .errors import PromptError
from .schedule import Schedule


def full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """Half precision -> float32; float32 and float64 stay as they are."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def token_ids(tokenizer: CLIPTokenizer, prompts: list[str]) -> torch.Tensor:
    """Token ids padded to the encoder's length; a prompt that does not fit is an error, by name."""
    most = tokenizer.model_max_length
    for prompt in prompts:
        count = len(tokenizer(prompt, verbose=False).input_ids)
        if count > most:
            shown = prompt if len(prompt) <= 60 else prompt[:57] + "..."
            raise PromptError(f"the prompt {shown!r} is {count} tokens long; the text encoder takes at most "
                              f"{most} (start and end included): shorten it")
    return tokenizer(prompts, padding="max_length", max_length=most, return_tensors="pt").input_ids


@dataclass(frozen=True)
class PhotoMemory:
    """Peak GPU memory of a null-text batch beyond the weights, at the family's own resolution: a
    fixed part (graph pools, the VAE, workspaces) plus a part per photo (runs/batch_size.py uses it).

    Measured on an H200 with `benchmarks/peak_memory.py --batch B` (float16, CUDA graphs; 2026-11-30;
    docs/BENCHMARKS.md): peak memory reserved, weights excluded, rounded up so that every measured
    batch lies under the line."""

    reference_resolution: int  # pixels per side
    fixed_gib: float
    per_photo_gib: float


@dataclass
class ClipText:
    """SD 1.x / 2.x: (B, 77, D), the encoder's last hidden state; the null prompt is "" encoded."""

    encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    family: ClassVar[str] = "sd"
    upcasts_vae: ClassVar[bool] = False  # diffusers' SD pipeline runs the VAE in the UNet's dtype
    # SD v1 (2.05 GiB of weights): 4.62 / 10.47 / 16.68 / 30.68 GiB at batch 1 / 4 / 8 / 16.
    photo_memory: ClassVar[PhotoMemory] = PhotoMemory(512, 0.9, 1.8)
    null_text_record: ClassVar[dict] = {}  # what null-text's record adds for this family: nothing
    schedule_type: ClassVar[type] = Schedule  # DDIM's step rule (schedule.py)
    scheduler_class: ClassVar[type] = DDIMScheduler  # what `Model.save` writes to scheduler/
    denoiser_folder: ClassVar[str] = "unet"
    attention_kind: ClassVar[str] = "cross-attention"  # how editing reaches it (editing/control.py)
    default_steps: ClassVar[int] = DEFAULT_STEPS  # when none is given: the papers'
    default_guidance: ClassVar[float] = DEFAULT_GUIDANCE

    @property
    def encoders(self) -> tuple[torch.nn.Module, ...]:
        return (self.encoder,)

    @torch.no_grad()
    def embed(self, prompts: list[str], device) -> torch.Tensor:
        return full_precision(self.encoder(token_ids(self.tokenizer, prompts).to(device))[0])

    def empty(self, count: int, device, embed) -> torch.Tensor:
        """The null prompt; `embed(prompts)` encodes (the model's, which brings offloaded encoders)."""
        return embed([""] * count)

    def attention_processor(self):
        """SDPA that takes the embedding in any precision (attention.py)."""
        return FusedAttention()

    def denoiser_inputs(self, embeddings: torch.Tensor, image_size: tuple[int, int], timestep, dtype) -> dict:
        """The UNet's keyword arguments; the embedding as it is (its text projections may stay float32)."""
        return {"timestep": timestep, "encoder_hidden_states": embeddings}

    def save(self, folder: Path) -> None:
        self.encoder.save_pretrained(folder / "text_encoder")
        self.tokenizer.save_pretrained(folder / "tokenizer")
        # so that diffusers' StableDiffusionPipeline (and its single-file loading, as configs) opens the folder too
        (folder / "model_index.json").write_text(json.dumps(self.pipeline_index(), indent=2) + "\n")

    def pipeline_index(self) -> dict:
        return {
            "_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
            "requires_safety_checker": False, "safety_checker": [None, None], "feature_extractor": [None, None],
            "image_encoder": [None, None], "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "DDIMScheduler"],
        }

    def pipeline(self, unet, vae, scheduler) -> StableDiffusionPipeline:
        """diffusers' pipeline around these parts (no copies): its LoRA loading works on it (loras.py)."""
        return StableDiffusionPipeline(vae, self.encoder, self.tokenizer, unet, scheduler, safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)


@dataclass
class SdxlText:
    """SDXL: (B, 78, 2048), 77 token rows of both encoders' penultimate states, then the pooled row.

    `zeros_for_empty_prompt` is the pipeline's `force_zeros_for_empty_prompt` (true for SDXL base):
    the null prompt is then all zeros, tokens and pooled, as diffusers' SDXL pipeline makes it.
    """

    encoder: CLIPTextModel
    encoder_2: CLIPTextModelWithProjection
    tokenizer: CLIPTokenizer
    tokenizer_2: CLIPTokenizer
    zeros_for_empty_prompt: bool = True
    family: ClassVar[str] = "sdxl"
    upcasts_vae: ClassVar[bool] = True  # diffusers' SDXL pipeline: float32 for a VAE whose config says force_upcast
    # SDXL (7.37 GiB of weights): 22.43 / 30.19 / 52.24 GiB at batch 1 / 2 / 4; the commands'
    # expandable_segments allocator needs less (its allocated peak grows 5.1 GiB a photo).
    photo_memory: ClassVar[PhotoMemory] = PhotoMemory(1024, 4.0, 11.0)
    # Null-text optimises the pooled null embedding with the token rows (the embedding's last row): it
    # followed the pivots with 5-15% lower latent error than the tokens alone in benchmarks/sdxl_pooled.py
    # (docs/BENCHMARKS.md), at no extra cost.
    null_text_record: ClassVar[dict] = {"optimised_embedding": "tokens and pooled"}
    schedule_type: ClassVar[type] = Schedule
    scheduler_class: ClassVar[type] = DDIMScheduler
    denoiser_folder: ClassVar[str] = "unet"
    attention_kind: ClassVar[str] = "cross-attention"  # how editing reaches it (editing/control.py)
    default_steps: ClassVar[int] = DEFAULT_STEPS  # when none is given: the papers'
    default_guidance: ClassVar[float] = DEFAULT_GUIDANCE

    @property
    def encoders(self) -> tuple[torch.nn.Module, ...]:
        return (self.encoder, self.encoder_2)

    def attention_processor(self):
        return FusedAttention()

    @property
    def pooled_width(self) -> int:
        return self.encoder_2.config.projection_dim

    @torch.no_grad()
    def embed(self, prompts: list[str], device) -> torch.Tensor:
        first = self.encoder(token_ids(self.tokenizer, prompts).to(device), output_hidden_states=True)
        second = self.encoder_2(token_ids(self.tokenizer_2, prompts).to(device), output_hidden_states=True)
        tokens = torch.cat([full_precision(first.hidden_states[-2]), full_precision(second.hidden_states[-2])], dim=-1)
        pooled = F.pad(full_precision(second.text_embeds), (0, tokens.shape[-1] - self.pooled_width))
        return torch.cat([tokens, pooled[:, None]], dim=1)

    def empty(self, count: int, device, embed) -> torch.Tensor:
        if self.zeros_for_empty_prompt:  # no encoder runs
            width = self.encoder.config.hidden_size + self.encoder_2.config.hidden_size
            return torch.zeros(count, self.tokenizer.model_max_length + 1, width, device=device)
        return embed([""] * count)

    def denoiser_inputs(self, embeddings: torch.Tensor, image_size: tuple[int, int], timestep, dtype) -> dict:
        """Tokens to cross-attention; pooled row and `add_time_ids` (original size, crop top-left,
        target size: the photo is resized to the model's size, uncropped) to the added embedding.
        The ids are filled in by kernels rather than copied from the host, so CUDA graphs capture them."""
        height, width = image_size
        time_ids = embeddings.new_zeros(embeddings.shape[0], 6)
        for column, value in ((0, height), (1, width), (4, height), (5, width)):
            time_ids[:, column] = value
        return {
            "timestep": timestep, "encoder_hidden_states": embeddings[:, :-1],
            "added_cond_kwargs": {"text_embeds": embeddings[:, -1, : self.pooled_width], "time_ids": time_ids},
        }

    def save(self, folder: Path) -> None:
        self.encoder.save_pretrained(folder / "text_encoder")
        self.encoder_2.save_pretrained(folder / "text_encoder_2")
        self.tokenizer.save_pretrained(folder / "tokenizer")
        self.tokenizer_2.save_pretrained(folder / "tokenizer_2")
        # so that diffusers' StableDiffusionXLPipeline opens the folder too
        (folder / "model_index.json").write_text(json.dumps(self.pipeline_index(), indent=2) + "\n")

    def pipeline(self, unet, vae, scheduler) -> StableDiffusionXLPipeline:
        return StableDiffusionXLPipeline(vae, self.encoder, self.encoder_2, self.tokenizer, self.tokenizer_2, unet,
                                         scheduler, force_zeros_for_empty_prompt=self.zeros_for_empty_prompt)

    def pipeline_index(self) -> dict:
        return {
            "_class_name": "StableDiffusionXLPipeline", "_diffusers_version": diffusers.__version__,
            "force_zeros_for_empty_prompt": self.zeros_for_empty_prompt,
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "scheduler": ["diffusers", "DDIMScheduler"], "image_encoder": [None, None],
            "feature_extractor": [None, None],
        }


def load_text(source: str | os.PathLike, sdxl: bool, zeros_for_empty_prompt: bool, **options) -> ClipText | SdxlText:
    """The family's encoders and tokenizers from a diffusers folder or hub id (`options`: from_pretrained's)."""
    encoder = CLIPTextModel.from_pretrained(source, subfolder="text_encoder", **options)
    tokenizer = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **options)
    if not sdxl:
        return ClipText(encoder, tokenizer)
    return SdxlText(encoder, CLIPTextModelWithProjection.from_pretrained(source, subfolder="text_encoder_2", **options),
                    tokenizer, CLIPTokenizer.from_pretrained(source, subfolder="tokenizer_2", **options),
                    zeros_for_empty_prompt)


def text_of_pipeline(pipeline) -> ClipText | SdxlText:
    """The text side of a diffusers SD or SDXL pipeline, its encoders and tokenizers as they are."""
    if pipeline.unet.config.addition_embed_type != "text_time":
        return ClipText(pipeline.text_encoder, pipeline.tokenizer)
    zeros = bool(getattr(pipeline.config, "force_zeros_for_empty_prompt", True))
    return SdxlText(pipeline.text_encoder, pipeline.text_encoder_2, pipeline.tokenizer, pipeline.tokenizer_2, zeros)
