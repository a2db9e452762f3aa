"""LoRA adapters fused into a model's weights, through diffusers' LoRA loading (peft).

A LoRA file is read once (its bytes hashed for the fingerprint, then parsed), converted to
diffusers' layout by the family's own `lora_state_dict` (kohya / A1111 files too), checked against
the model's layers, loaded as peft adapters into the UNet and the text encoders it has weights for,
and fused: W += scale * (alpha / rank) * B @ A, after which the adapters are unloaded. Fused rather
than kept as adapters, since a model's LoRAs and scales are fixed for its life (the fingerprint
covers them): the UNet then runs exactly the base model's kernels, so CUDA graphs and the attention
processors see plain layers, and each step costs what it costs without a LoRA. A scale of 0 fuses
nothing and is not recorded: the weights, and so the fingerprint, are the base model's.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from diffusers import DDIMScheduler
from safetensors import SafetensorError
from safetensors.torch import load

from .errors import ModelLoadError, OptionError, is_number
from .fingerprints import with_loras

# The cross-attention's text width, which tells the family a LoRA was made for.
TEXT_WIDTHS = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}


@dataclass(frozen=True)
class LoraRecord:
    """A LoRA as artifacts record it: which file (by name and content) at which scale."""

    file: str  # the file's name, as people call it
    path: str  # where it was read from
    sha256: str  # of the file's bytes
    scale: float

    @property
    def flag(self) -> str:
        """The command-line flag that adds it again."""
        return f"--lora {self.path}:{self.scale:g}"

    def as_dict(self) -> dict:
        return asdict(self)


def check_scale(path, scale) -> None:
    if not is_number(scale) or not math.isfinite(scale):
        raise OptionError("loras", f"the scale of LoRA {path} must be a finite number, got {scale!r}")


def read_lora(path: str | Path, scale: float) -> tuple[LoraRecord, dict[str, torch.Tensor]]:
    """The file's record and its tensors, or a ModelLoadError of one line naming the file."""
    check_scale(path, scale)
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()  # read once: the bytes hashed are the bytes loaded
    except OSError as error:
        raise ModelLoadError(f"LoRA {path}: cannot read it ({error.strerror or error})") from None
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise ModelLoadError(f"LoRA {path}: not a complete safetensors file, truncated or of another format "
                             f"({str(error).splitlines()[0][:120]}); give the .safetensors file of a LoRA") from None
    record = LoraRecord(path.name, str(path.resolve()), hashlib.sha256(data).hexdigest(), float(scale))
    return record, tensors


def fuse_loras(model, loras) -> None:
    """Fuse `loras`, (path, scale) pairs, into `model`'s weights, in order; record them on the model.
    Every file is read and checked against the model before any weight changes."""
    read = [read_lora(path, scale) for path, scale in loras]
    read = [(record, tensors) for record, tensors in read if record.scale != 0]
    if not read:
        return
    pipeline = model.text.pipeline(model.unet, model.vae, DDIMScheduler.from_config(model.scheduler_config))
    targets = {"unet": model.unet, **text_encoder_targets(pipeline)}
    converted = [lora_state_dict(pipeline, record, tensors) for record, tensors in read]
    for (record, _), (state, _, _) in zip(read, converted):
        check_fits(record, state, targets, model.unet.config.cross_attention_dim)
    names = [f"lora_{index}" for index in range(len(read))]
    with warnings.catch_warnings():  # peft's note that a model holds several adapters: so it should, for a moment
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        for name, (state, alphas, metadata) in zip(names, converted):
            pipeline.load_lora_into_unet(state, alphas, pipeline.unet, adapter_name=name, metadata=metadata,
                                         _pipeline=pipeline)
            for prefix, encoder in targets.items():
                if prefix != "unet" and any(key.startswith(prefix + ".") for key in state):
                    pipeline.load_lora_into_text_encoder(state, alphas, encoder, prefix=prefix, adapter_name=name,
                                                         metadata=metadata, _pipeline=pipeline)
    pipeline.set_adapters(names, adapter_weights=[record.scale for record, _ in read])
    pipeline.fuse_lora(components=list(targets), adapter_names=names)
    pipeline.unload_lora_weights()  # the fused weights stay; the adapters' layers go
    records = [record for record, _ in read]
    model.loras = (*model.loras, *records)
    model.fingerprint = with_loras(model.fingerprint, records)


def lora_state_dict(pipeline, record: LoraRecord, tensors: dict[str, torch.Tensor]):
    """The family's own conversion to diffusers' layout (kohya / A1111 keys too), with the network
    alphas and the adapter settings diffusers keeps in the file's metadata (read from the file)."""
    path = Path(record.path)
    if not any(".alpha" in key or "lora" in key for key in tensors):
        return tensors, None, None  # check_fits names what the file holds instead
    return pipeline.lora_state_dict(str(path.parent), weight_name=path.name, local_files_only=True,
                                    unet_config=pipeline.unet.config, return_lora_metadata=True)


def text_encoder_targets(pipeline) -> dict[str, torch.nn.Module]:
    """The pipeline's text encoders by the prefix their LoRA keys carry (text_encoder, text_encoder_2)."""
    return {name: getattr(pipeline, name) for name in ("text_encoder", "text_encoder_2")
            if getattr(pipeline, name, None) is not None}


def check_fits(record: LoraRecord, state: dict, targets: dict, text_width: int) -> None:
    """Every LoRA weight of `state` (diffusers' layout, keys `unet.<layer>.lora...`) on a layer of
    the model with the LoRA's input width; else one line saying why the file does not fit."""
    layers = {prefix: dict(part.named_modules()) for prefix, part in targets.items()}
    down_weights = {key: tensor for key, tensor in state.items()
                    if ".lora" in key and key.split(".", 1)[0] in layers and is_down_weight(key)}
    if not down_weights:
        shown = ", ".join(list(state)[:2]) or "none"
        raise ModelLoadError(f"LoRA {record.path}: not a LoRA file (no LoRA weights for a UNet or text encoder in "
                             f"it; its keys are like {shown}); give a LoRA's .safetensors file")
    lora_width = lora_text_width(down_weights)
    if lora_width is not None and lora_width != text_width:
        made_for, this = (f"{TEXT_WIDTHS[width]} " if width in TEXT_WIDTHS else ""
                          for width in (lora_width, text_width))
        raise ModelLoadError(f"LoRA {record.path}: made for {made_for or 'another '}model (text width {lora_width}), "
                             f"not this {this}model (text width {text_width}); use a LoRA made for this model's family")
    for key, tensor in down_weights.items():
        prefix, rest = key.split(".", 1)
        name = rest[: rest.index(".lora")]
        layer = layers[prefix].get(name)
        if layer is None:
            raise ModelLoadError(f"LoRA {record.path}: its key {key} matches no layer of this model; "
                                 f"use a LoRA made for this model")
        width = getattr(layer, "in_features", getattr(layer, "in_channels", None))
        if width != tensor.shape[1]:
            raise ModelLoadError(f"LoRA {record.path}: layer {prefix}.{name} takes {width} inputs here, "
                                 f"{tensor.shape[1]} in the LoRA; use a LoRA made for this model")


def is_down_weight(key: str) -> bool:
    """The first of a LoRA pair (A, or "down"), whose input width is the layer's."""
    return key.endswith(("lora.down.weight", "lora_A.weight", "lora_linear_layer.down.weight", "lora_down.weight"))


def lora_text_width(down_weights: dict[str, torch.Tensor]) -> int | None:
    """The text width the LoRA's cross-attention keys take (None: it adapts none)."""
    widths = {tensor.shape[1] for key, tensor in down_weights.items()
              if key.startswith("unet.") and ".attn2.to_k" in key}
    return widths.pop() if len(widths) == 1 else None
