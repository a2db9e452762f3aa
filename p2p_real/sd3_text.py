"""The SD3 / SD3.5 family's adapter (Esser et al. 2024): its text side, its denoiser's call and its
schedule, so that the loops, null-text, guidance and the artifacts see one embedding tensor as for
SD v1 and SDXL (p2p_real/text_encoders.py).

The embedding is what diffusers' `StableDiffusion3Pipeline.encode_prompt` makes, in one tensor:
77 rows of the two CLIP encoders' penultimate states side by side (768 + 1280), zero-padded to the
T5 width (4096), then T5's 256 rows (333 token rows: the transformer's text keys), then one row with
the pooled vector (the two CLIPs' projections, 768 + 1280), zero-padded: (B, 334, 4096). Null-text
optimises all of it, the pooled row included: the pooled text enters every block's AdaLN.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import diffusers
import torch
import torch.nn.functional as F
from diffusers import FlowMatchEulerDiscreteScheduler
from transformers import AutoTokenizer, CLIPTextModelWithProjection, CLIPTokenizer, T5EncoderModel

from .defaults import SD3_GUIDANCE, SD3_STEPS
from .flow_schedule import FlowSchedule
from .joint_attention import JointAttention
from .text_encoders import PhotoMemory, full_precision, token_ids

T5_TOKENS = 256  # the pipeline's max_sequence_length


@dataclass
class Sd3Text:
    encoder: CLIPTextModelWithProjection  # CLIP ViT-L
    encoder_2: CLIPTextModelWithProjection  # OpenCLIP ViT-bigG
    encoder_3: T5EncoderModel | None  # T5-XXL; None when a pipeline was saved without it (zeros, as diffusers)
    tokenizer: CLIPTokenizer
    tokenizer_2: CLIPTokenizer
    tokenizer_3: object | None  # a T5 tokenizer
    joint_width: int  # the transformer's joint_attention_dim (4096)
    family: ClassVar[str] = "sd3"
    # Not measured: the weights (transformer 4.5 GB, T5-XXL 9.5 GB in float16) plus an SDXL-like guess per photo.
    photo_memory: ClassVar[PhotoMemory] = PhotoMemory(1024, 4.0, 12.0)
    null_text_record: ClassVar[dict] = {"optimised_embedding": "tokens and pooled"}
    schedule_type: ClassVar[type] = FlowSchedule
    scheduler_class: ClassVar[type] = FlowMatchEulerDiscreteScheduler
    denoiser_folder: ClassVar[str] = "transformer"
    attention_kind: ClassVar[str] = "joint attention"  # editing/control.py
    default_steps: ClassVar[int] = SD3_STEPS  # the pipeline's, when none is given
    default_guidance: ClassVar[float] = SD3_GUIDANCE

    @property
    def encoders(self) -> tuple[torch.nn.Module, ...]:
        return tuple(encoder for encoder in (self.encoder, self.encoder_2, self.encoder_3) if encoder is not None)

    @property
    def pooled_width(self) -> int:
        return self.encoder.config.projection_dim + self.encoder_2.config.projection_dim

    def attention_processor(self):
        """JointAttnProcessor2_0's math with fused SDPA, and the hook editing overrides (joint_attention.py)."""
        return JointAttention()

    @torch.no_grad()
    def embed(self, prompts: list[str], device) -> torch.Tensor:
        first = self.encoder(token_ids(self.tokenizer, prompts).to(device), output_hidden_states=True)
        second = self.encoder_2(token_ids(self.tokenizer_2, prompts).to(device), output_hidden_states=True)
        clip = torch.cat([full_precision(first.hidden_states[-2]), full_precision(second.hidden_states[-2])], dim=-1)
        tokens = torch.cat([F.pad(clip, (0, self.joint_width - clip.shape[-1])), self.t5(prompts, device)], dim=1)
        pooled = torch.cat([full_precision(first.text_embeds), full_precision(second.text_embeds)], dim=-1)
        return torch.cat([tokens, F.pad(pooled, (0, self.joint_width - self.pooled_width))[:, None]], dim=1)

    def t5(self, prompts: list[str], device) -> torch.Tensor:
        if self.encoder_3 is None:
            return torch.zeros(len(prompts), T5_TOKENS, self.joint_width, device=device)
        ids = self.tokenizer_3(prompts, padding="max_length", max_length=T5_TOKENS, truncation=True,
                               add_special_tokens=True, return_tensors="pt").input_ids
        return full_precision(self.encoder_3(ids.to(device))[0])

    def empty(self, count: int, device, embed) -> torch.Tensor:
        """The pipeline's default negative prompt: "" encoded (SD3 has no zeros-for-empty-prompt)."""
        return embed([""] * count)

    def denoiser_inputs(self, embeddings: torch.Tensor, image_size, timestep, dtype) -> dict:
        """Token rows to the joint attention's text stream, the pooled row to AdaLN, the timestep (sigma
        x 1000, a float) once per row as the transformer wants it; in the transformer's dtype."""
        batch = embeddings.shape[0]
        return {"timestep": torch.as_tensor(timestep, device=embeddings.device).reshape(-1).expand(batch),
                "encoder_hidden_states": embeddings[:, :-1].to(dtype),
                "pooled_projections": embeddings[:, -1, : self.pooled_width].to(dtype)}

    def save(self, folder: Path) -> None:
        for index, (encoder, tokenizer) in enumerate(zip(self.encoders, (self.tokenizer, self.tokenizer_2,
                                                                         self.tokenizer_3))):
            suffix = f"_{index + 1}" if index else ""
            encoder.save_pretrained(folder / f"text_encoder{suffix}")
            tokenizer.save_pretrained(folder / f"tokenizer{suffix}")
        (folder / "model_index.json").write_text(json.dumps(self.pipeline_index(), indent=2) + "\n")

    def pipeline_index(self) -> dict:
        """So that diffusers' StableDiffusion3Pipeline opens the folder too."""
        t5 = self.encoder_3 is not None
        return {
            "_class_name": "StableDiffusion3Pipeline", "_diffusers_version": diffusers.__version__,
            "transformer": ["diffusers", "SD3Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"],
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "text_encoder_3": ["transformers", "T5EncoderModel"] if t5 else [None, None],
            "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "tokenizer_3": ["transformers", "T5TokenizerFast"] if t5 else [None, None],
            "image_encoder": [None, None], "feature_extractor": [None, None],
        }


def load_sd3_text(source: str, joint_width: int, **options) -> Sd3Text:
    """The three encoders and tokenizers of a diffusers SD3 folder or hub id (T5 optional, as there)."""
    clip = [CLIPTextModelWithProjection.from_pretrained(source, subfolder=f"text_encoder{suffix}", **options)
            for suffix in ("", "_2")]
    tokenizers = [CLIPTokenizer.from_pretrained(source, subfolder=f"tokenizer{suffix}", **options)
                  for suffix in ("", "_2")]
    try:
        t5 = T5EncoderModel.from_pretrained(source, subfolder="text_encoder_3", **options)
        t5_tokenizer = AutoTokenizer.from_pretrained(source, subfolder="tokenizer_3", **options)
    except OSError:  # saved without T5: the pipeline then uses zeros for its rows
        t5, t5_tokenizer = None, None
    return Sd3Text(*clip, t5, *tokenizers, t5_tokenizer, joint_width)
