"""Tiny LoRA files for the tiny models, built with peft and saved in diffusers' LoRA file format."""
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model

from p2p_real.random_models import tiny_random

UNET_LAYERS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_LAYERS = ["q_proj", "k_proj", "v_proj", "out_proj"]
RANK, ALPHA = 4, 8  # alpha / rank = 2: a file whose scaling is not 1, which the loader must read from the metadata


def write_tiny_lora(path: Path, seed: int = 0, build=tiny_random, text_encoder: bool = True) -> Path:
    """A LoRA for `build()`'s UNet attention (and its first text encoder's), random up and down weights."""
    model = build(seed=0)  # a scratch copy: peft adds its layers to it
    generator = torch.Generator().manual_seed(seed)
    configs, layers = {}, {}
    parts = [("unet", model.unet, UNET_LAYERS)] + ([("text_encoder", model.text.encoder, TEXT_LAYERS)] * text_encoder)
    for name, part, targets in parts:
        configs[name] = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=targets, init_lora_weights="gaussian")
        inject_adapter_in_model(configs[name], part)  # peft's own: transformers' add_adapter wants a newer peft
        for parameter_name, parameter in part.named_parameters():
            if "lora_" in parameter_name:  # B starts at zero: random, so that the LoRA changes something
                parameter.data = torch.randn(parameter.shape, generator=generator) * 0.3
        layers[name] = convert_state_dict_to_diffusers(get_peft_model_state_dict(part))
    StableDiffusionPipeline.save_lora_weights(
        path.parent, unet_lora_layers=layers["unet"], text_encoder_lora_layers=layers.get("text_encoder"),
        weight_name=path.name, unet_lora_adapter_metadata=configs["unet"].to_dict(),
        text_encoder_lora_adapter_metadata=configs["text_encoder"].to_dict() if text_encoder else None)
    return path


def merge_by_hand(model, lora_file: Path, scale: float) -> None:
    """W += scale * alpha / rank * up @ down for each layer the file adapts, in the model's own modules."""
    from safetensors.torch import load_file

    tensors = load_file(lora_file)
    parts = {"unet": model.unet, "text_encoder": model.text.encoder}
    with torch.no_grad():
        for key, down in tensors.items():
            if key.endswith(("down.weight", "lora_A.weight")):
                prefix, rest = key.split(".", 1)
                layer = parts[prefix].get_submodule(rest[: rest.index(".lora")])
                up = tensors[key[: -len("down.weight")] + "up.weight" if key.endswith("down.weight")
                             else key[: -len("A.weight")] + "B.weight"]
                layer.weight += scale * ALPHA / RANK * (up.double() @ down.double()).to(layer.weight.dtype)
