"""Random-weight models of the SD3 family (Esser et al. 2024), built from configs, offline.

`tiny-sd3-random`: the SD3.5-medium layout scaled down (dual attention in the first block, qk RMS
norm, CLIP-L + CLIP-G + T5 with in-memory tokenizers), seconds on a CPU. `sd3-random`: the full
SD3.5-medium architecture (2.24 B transformer parameters, T5-XXL), for speed and memory.
"""
from __future__ import annotations

from diffusers import AutoencoderKL, SD3Transformer2DModel
from transformers import CLIPTextModelWithProjection, T5Config, T5EncoderModel

from .clip_tokenizer import clip_tokenizer
from .models import Model
from .random_models import CLIP_VIT_L, TINY_CLIP, clip_text_config, seeded
from .sd3_text import Sd3Text
from .t5_tokenizer import t5_tokenizer

SD3_SCHEDULER = {"num_train_timesteps": 1000, "shift": 3.0}  # SD3 / SD3.5's scheduler_config.json
CLIP_BIG_G = (1280, 5120, 32, 20)
T5_XXL = {"d_model": 4096, "d_ff": 10240, "d_kv": 64, "num_heads": 64, "num_layers": 24, "vocab_size": 32128}


def sd3_vae(**sizes) -> AutoencoderKL:
    """SD3's VAE layout: 16 latent channels at 1/8 of the side, shifted and scaled, no quant convs."""
    return AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         scaling_factor=1.5305, shift_factor=0.0609, use_quant_conv=False, use_post_quant_conv=False,
                         force_upcast=True, **sizes)


def t5_encoder(**sizes) -> T5EncoderModel:
    return T5EncoderModel(T5Config(feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
                                   relative_attention_num_buckets=32, relative_attention_max_distance=128, **sizes))


def sd3_text(clip_l, clip_g, t5, joint_width: int) -> Sd3Text:
    encoders = (CLIPTextModelWithProjection(clip_text_config(*clip_l, projection_dim=clip_l[0])),
                CLIPTextModelWithProjection(clip_text_config(*clip_g, hidden_act="gelu", projection_dim=clip_g[0])),
                t5_encoder(**t5))
    return Sd3Text(*encoders, clip_tokenizer(), clip_tokenizer(pad_token="!"), t5_tokenizer(), joint_width)


def tiny_sd3_random(seed: int = 0, device=None) -> Model:
    """128x128 images, 4x16x16 latents in 2x2 patches (64 image tokens), two joint blocks of 4 heads x 8,
    the first with SD3.5's dual (image-only) attention, 333 text tokens 96 wide (CLIPs 32 + 32, padded)."""
    with seeded(seed, None):  # on the CPU wherever it runs: the same weights everywhere
        transformer = SD3Transformer2DModel(
            sample_size=16, patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
            num_attention_heads=4, joint_attention_dim=96, caption_projection_dim=32, pooled_projection_dim=64,
            pos_embed_max_size=16, dual_attention_layers=(0,), qk_norm="rms_norm")
        vae = sd3_vae(latent_channels=4, block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=16,
                      sample_size=128)
        text = sd3_text(TINY_CLIP, TINY_CLIP, {"d_model": 96, "d_ff": 128, "d_kv": 16, "num_heads": 4,
                                               "num_layers": 2, "vocab_size": 256}, joint_width=96)
    return Model(transformer, vae, text, dict(SD3_SCHEDULER), name="tiny-sd3-random", upcast_vae=True)


def sd3_random(seed: int = 0, device=None) -> Model:
    """SD3.5-medium's architecture with seeded random weights: 24 joint blocks of 24 heads x 64, dual
    attention in blocks 0-12, qk RMS norm, 384 position-embedding side; CLIP-L, CLIP-G, T5-XXL; SD3's VAE."""
    with seeded(seed, device):
        transformer = SD3Transformer2DModel(
            sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24, attention_head_dim=64,
            num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536, pooled_projection_dim=2048,
            pos_embed_max_size=384, dual_attention_layers=tuple(range(13)), qk_norm="rms_norm")
        vae = sd3_vae(latent_channels=16, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                      norm_num_groups=32, sample_size=1024)
        text = sd3_text(CLIP_VIT_L, CLIP_BIG_G, T5_XXL, joint_width=4096)
    return Model(transformer, vae, text, dict(SD3_SCHEDULER), name="sd3-random", upcast_vae=True)


SD3_BUILDERS = {"tiny-sd3-random": tiny_sd3_random, "sd3-random": sd3_random}
