"""A diffusers-layout model's weights written in the original single-file key layout (CompVis LDM
for SD 1.x / 2.x, Stability's SGM for SDXL), so that the loader of single files can be tested
against the same weights loaded from a diffusers folder. The key names are the original
repositories' module names; diffusers' own single-file loading reads them back, which is the check.
"""
import torch
from diffusers import UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from p2p_real.clip_tokenizer import clip_tokenizer
from p2p_real.models import Model
from p2p_real.random_models import (
    SD_V1_SCHEDULER,
    SDXL_SCHEDULER,
    TINY_CLIP,
    clip_text_config,
    four_level_vae,
    sdxl_unet,
    sdxl_vae,
    seeded,
)
from p2p_real.text_encoders import ClipText, SdxlText

RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
          "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def rename(key: str, table: dict) -> str:
    for old, new in table.items():
        if key.startswith(old + "."):
            return new + key[len(old):]
    return key


def unet_key(key: str, config) -> str:
    """A diffusers UNet key -> the original `model.diffusion_model.` key."""
    per_block = config.layers_per_block
    parts = key.split(".")
    top = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
           "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
           "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    new = rename(key, top)
    if new != key:
        return new
    if parts[0] == "down_blocks":
        block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "downsamplers":  # downsamplers.0.conv.weight
            return f"input_blocks.{(block + 1) * (per_block + 1)}.0.op.{'.'.join(parts[5:])}"
        layer = 1 + block * (per_block + 1) + index
        return f"input_blocks.{layer}.{0 if kind == 'resnets' else 1}." + (rename(rest, RESNET) if kind == "resnets"
                                                                             else rest)
    if parts[0] == "mid_block":
        kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        return f"middle_block.{2 * index if kind == 'resnets' else 1}." + (rename(rest, RESNET) if kind == "resnets"
                                                                           else rest)
    if parts[0] == "up_blocks":
        block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        has_attention = "CrossAttn" in config.up_block_types[block]
        if kind == "upsamplers":
            layer = block * (per_block + 1) + per_block
            return f"output_blocks.{layer}.{2 if has_attention else 1}.{'.'.join(parts[4:])}"
        layer = block * (per_block + 1) + index
        return f"output_blocks.{layer}.{0 if kind == 'resnets' else 1}." + (rename(rest, RESNET) if kind == "resnets"
                                                                              else rest)
    raise KeyError(key)


def vae_key(key: str, levels: int) -> tuple[str, bool]:
    """A diffusers VAE key -> (the original `first_stage_model.` key, whether a linear weight becomes a 1x1 conv)."""
    parts = key.split(".")
    if parts[0] in ("encoder", "decoder") and parts[1] in ("down_blocks", "up_blocks"):
        side, block, kind = parts[0], int(parts[2]), parts[3]
        level = block if side == "encoder" else levels - 1 - block
        name = "down" if side == "encoder" else "up"
        if kind in ("downsamplers", "upsamplers"):
            return f"{side}.{name}.{level}.{kind[:-2]}.{'.'.join(parts[5:])}", False
        return f"{side}.{name}.{level}.block.{parts[4]}." + rename(".".join(parts[5:]), VAE_RESNET), False
    if parts[0] in ("encoder", "decoder") and parts[1] == "mid_block":
        if parts[2] == "resnets":
            return f"{parts[0]}.mid.block_{int(parts[3]) + 1}." + rename(".".join(parts[4:]), VAE_RESNET), False
        inner = rename(".".join(parts[4:]), VAE_ATTENTION)
        linear_weight = not inner.startswith("norm.") and inner.endswith("weight")
        return f"{parts[0]}.mid.attn_1.{inner}", linear_weight
    norm_out = {"encoder.conv_norm_out": "encoder.norm_out", "decoder.conv_norm_out": "decoder.norm_out"}
    return rename(key, norm_out), False


def clip_tensors(encoder) -> dict:
    """A transformers CLIP text encoder's weights under the original names: `text_model.` first
    (transformers 5 dropped that level from CLIPTextModel, the checkpoints keep it)."""
    return {key if key.startswith(("text_model.", "text_projection")) else "text_model." + key: value
            for key, value in encoder.state_dict().items() if "position_ids" not in key}


def open_clip_tensors(encoder, prefix: str, projection: bool) -> dict:
    """A transformers CLIP text encoder in OpenCLIP's layout (SD 2.x's and SDXL's second encoder)."""
    weights = clip_tensors(encoder)
    out = {f"{prefix}token_embedding.weight": weights["text_model.embeddings.token_embedding.weight"],
           f"{prefix}positional_embedding": weights["text_model.embeddings.position_embedding.weight"],
           f"{prefix}ln_final.weight": weights["text_model.final_layer_norm.weight"],
           f"{prefix}ln_final.bias": weights["text_model.final_layer_norm.bias"]}
    if projection:
        out[f"{prefix}text_projection"] = weights["text_projection.weight"].T.contiguous()
    for layer in range(encoder.config.num_hidden_layers):
        old, new = f"text_model.encoder.layers.{layer}.", f"{prefix}transformer.resblocks.{layer}."
        for kind in ("weight", "bias"):
            out[f"{new}attn.in_proj_{kind}"] = torch.cat([weights[f"{old}self_attn.{p}_proj.{kind}"] for p in "qkv"])
            for source, target in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                                   ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
                out[f"{new}{target}.{kind}"] = weights[f"{old}{source}.{kind}"]
    return out


def original_layout(model, open_clip: bool = False) -> dict:
    """`model`'s weights (a p2p_real Model) under the original single-file key names."""
    out = {"model.diffusion_model." + unet_key(key, model.unet.config): value
           for key, value in model.unet.state_dict().items()}
    levels = len(model.vae.config.block_out_channels)
    for key, value in model.vae.state_dict().items():
        name, to_conv = vae_key(key, levels)
        out["first_stage_model." + name] = value[..., None, None] if to_conv else value
    encoders = model.text.encoders
    if len(encoders) == 2:  # SDXL: CLIP ViT-L as the SGM conditioner's first embedder, OpenCLIP bigG the second
        out.update({f"conditioner.embedders.0.transformer.{key}": value
                    for key, value in clip_tensors(encoders[0]).items()})
        out.update(open_clip_tensors(encoders[1], "conditioner.embedders.1.model.", projection=True))
    elif open_clip:  # SD 2.x
        out.update(open_clip_tensors(encoders[0], "cond_stage_model.model.", projection=False))
    else:
        out.update({f"cond_stage_model.transformer.{key}": value for key, value in clip_tensors(encoders[0]).items()})
    return {key: value.contiguous() for key, value in out.items()}


def tiny_sd2_v(seed: int = 0) -> Model:
    """A small model of SD 2.x's family: linear projections in the transformers, an OpenCLIP-style
    text encoder (GELU, pads with "!"), v-prediction."""
    with seeded(seed, None):
        unet = UNet2DConditionModel(sample_size=16, block_out_channels=(32, 64, 64),
                                    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                                    layers_per_block=1, cross_attention_dim=32, attention_head_dim=(2, 4, 4),
                                    use_linear_projection=True, norm_num_groups=16)
        vae = four_level_vae(0.18215, block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=16,
                             sample_size=128)
        encoder = CLIPTextModel(clip_text_config(*TINY_CLIP, hidden_act="gelu"))
    scheduler = {**SD_V1_SCHEDULER, "prediction_type": "v_prediction"}
    return Model(unet, vae, ClipText(encoder, clip_tokenizer(pad_token="!")), scheduler, name="tiny-sd2-v")


def tiny_sdxl_two_widths(seed: int = 0) -> Model:
    """tiny-sdxl-random with a second text encoder wider than the first (48 against 32), as SDXL's
    (1280 against 768): diffusers' single-file loading tells the two encoders apart by width."""
    with seeded(seed, None):
        unet = sdxl_unet(sample_size=16, block_out_channels=(32, 64, 64), layers_per_block=1,
                         transformer_layers_per_block=(1, 1, 2), attention_head_dim=(2, 4, 4), cross_attention_dim=80,
                         addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 48,
                         norm_num_groups=16)
        vae = sdxl_vae(block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=16, sample_size=128)
        encoder = CLIPTextModel(clip_text_config(*TINY_CLIP))
        encoder_2 = CLIPTextModelWithProjection(clip_text_config(48, 96, 2, 4, hidden_act="gelu", projection_dim=48))
    text = SdxlText(encoder, encoder_2, clip_tokenizer(), clip_tokenizer(pad_token="!"))
    return Model(unet, vae, text, dict(SDXL_SCHEDULER), name="tiny-sdxl-two-widths", upcast_vae=True)
