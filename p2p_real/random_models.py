"""Random-weight models built from configs: tests and benchmarks run offline on these.

`tiny-random` and `tiny-sdxl-random` are the SD v1 and SDXL families scaled down (seconds on a CPU);
`sd-v1-random` and `sdxl-random` are the full-size architectures, whose speed and memory do not
depend on the weights' values. Seeded, so a model's fingerprint is the same on every run.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from .clip_tokenizer import clip_tokenizer
from .models import Model
from .text_encoders import ClipText, SdxlText

# SD v1's scheduler settings (its scheduler_config.json), used by the random-weight builds.
SD_V1_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}
SDXL_SCHEDULER = {**SD_V1_SCHEDULER, "timestep_spacing": "leading"}  # SDXL base's scheduler_config.json


@contextmanager
def seeded(seed: int, device):
    """Build under `seed` without touching the caller's random state; on `device` when it is a GPU,
    where a full-size model initialises in a second instead of a minute."""
    device = torch.device(device or "cpu")
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.device(device):
        torch.manual_seed(seed)
        yield


def tiny_random(seed: int = 0, prediction_type: str = "epsilon", device=None) -> Model:
    """A small model of SD v1's family: 128x128 images, 16x16 latents, real CLIP tokenisation.

    Three UNet levels with cross-attention at the two finer ones (SD v1 has four, the coarsest
    without), a 4-level VAE (so the latent is 1/8 of the image, as in SD), a 2-layer CLIP encoder.
    """
    with seeded(seed, None):  # on the CPU wherever it runs: the same weights, so artifacts move between devices
        unet = UNet2DConditionModel(
            sample_size=16,
            block_out_channels=(32, 64, 64),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            layers_per_block=1,
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=16,
        )
        vae = four_level_vae(0.18215, block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=16,
                             sample_size=128)
        text_encoder = CLIPTextModel(clip_text_config(*TINY_CLIP))
    scheduler_config = {**SD_V1_SCHEDULER, "prediction_type": prediction_type}
    return Model(unet, vae, ClipText(text_encoder, clip_tokenizer()), scheduler_config, name="tiny-random")


def sd_v1_random(seed: int = 0, device=None) -> Model:
    """The full-size SD v1 architecture (UNet 320/640/1280/1280, ViT-L/14 text encoder, SD VAE),
    seeded random weights. Speed does not depend on weight values, so it serves GPU benchmarks."""
    with seeded(seed, device):
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # defaults are SD v1's
        vae = four_level_vae(0.18215, block_out_channels=(128, 256, 512, 512), layers_per_block=2, sample_size=512)
        text_encoder = CLIPTextModel(clip_text_config(*CLIP_VIT_L))
    return Model(unet, vae, ClipText(text_encoder, clip_tokenizer()), dict(SD_V1_SCHEDULER), name="sd-v1-random")


def tiny_sdxl_random(seed: int = 0, device=None) -> Model:
    """A small model of SDXL's family: no attention at the finest level, transformer depth 1 and 2
    (SDXL: 2 and 10), two text encoders concatenated (32 + 32 wide), the pooled projection and the
    size conditioning in the added embedding, an SDXL-style VAE (scale 0.13025, force_upcast)."""
    with seeded(seed, None):
        unet = sdxl_unet(sample_size=16, block_out_channels=(32, 64, 64), layers_per_block=1,
                         transformer_layers_per_block=(1, 1, 2), attention_head_dim=(2, 4, 4), cross_attention_dim=64,
                         addition_time_embed_dim=8,
                         projection_class_embeddings_input_dim=6 * 8 + 32, norm_num_groups=16)
        vae = sdxl_vae(block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=16, sample_size=128)
        encoder = CLIPTextModel(clip_text_config(*TINY_CLIP))
        encoder_2 = CLIPTextModelWithProjection(clip_text_config(*TINY_CLIP, hidden_act="gelu", projection_dim=32))
    text = SdxlText(encoder, encoder_2, clip_tokenizer(), clip_tokenizer(pad_token="!"))
    return Model(unet, vae, text, dict(SDXL_SCHEDULER), name="tiny-sdxl-random", upcast_vae=True)


def sdxl_random(seed: int = 0, device=None) -> Model:
    """The full-size SDXL base architecture (UNet 320/640/1280 with transformer depths 1/2/10, 2.57 B
    parameters; CLIP ViT-L and OpenCLIP ViT-bigG text encoders; SDXL's VAE), seeded random weights."""
    with seeded(seed, device):
        unet = sdxl_unet(sample_size=128, block_out_channels=(320, 640, 1280), transformer_layers_per_block=(1, 2, 10),
                         attention_head_dim=(5, 10, 20),  # diffusers' name for SDXL's head counts
                         cross_attention_dim=2048, addition_time_embed_dim=256,
                         projection_class_embeddings_input_dim=2816)
        vae = sdxl_vae(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32,
                       sample_size=1024)
        encoder = CLIPTextModel(clip_text_config(*CLIP_VIT_L))
        encoder_2 = CLIPTextModelWithProjection(clip_text_config(1280, 5120, 32, 20, hidden_act="gelu",
                                                                 projection_dim=1280))  # OpenCLIP bigG
    text = SdxlText(encoder, encoder_2, clip_tokenizer(), clip_tokenizer(pad_token="!"))
    return Model(unet, vae, text, dict(SDXL_SCHEDULER), name="sdxl-random", upcast_vae=True)


def four_level_vae(scaling_factor: float, **sizes) -> AutoencoderKL:
    """SD's VAE layout (4 latent channels at 1/8 of the image side) at the given sizes."""
    return AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         latent_channels=4, scaling_factor=scaling_factor, **sizes)


def sdxl_vae(**sizes) -> AutoencoderKL:
    return four_level_vae(0.13025, force_upcast=True, **sizes)


def sdxl_unet(**sizes) -> UNet2DConditionModel:
    """SDXL's UNet layout (no attention at the finest level; pooled text and size ids in the added
    embedding) at the given sizes."""
    return UNet2DConditionModel(down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                                use_linear_projection=True, addition_embed_type="text_time", **sizes)


TINY_CLIP = (32, 64, 2, 4)  # hidden size, MLP size, layers, heads
CLIP_VIT_L = (768, 3072, 12, 12)


def clip_text_config(hidden_size: int, intermediate_size: int, layers: int, heads: int, hidden_act: str = "quick_gelu",
                     **extra) -> CLIPTextConfig:
    """A CLIP text encoder's config with CLIP's 49,408-token vocabulary and 77 positions."""
    return CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, hidden_size=hidden_size,
                          intermediate_size=intermediate_size, num_hidden_layers=layers, num_attention_heads=heads,
                          hidden_act=hidden_act, **extra)


BUILDERS = {"tiny-random": tiny_random, "sd-v1-random": sd_v1_random,
            "tiny-sdxl-random": tiny_sdxl_random, "sdxl-random": sdxl_random}
