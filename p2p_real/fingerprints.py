"""A model's fingerprint: a short hash that ties artifacts to the weights that made them.

The base weights are sampled (their shapes, and the first values of the first and last weight of
each part: cheap at load time, and the same on every run). A LoRA fused into the weights changes
layers in between that the sample never sees, so each one joins the hash by its file's content and
its scale (p2p_real/loras.py): a changed LoRA or scale is a new model for resuming and for edits.
"""
from __future__ import annotations

import hashlib

import torch


def weights_fingerprint(parts: tuple[torch.nn.Module, ...]) -> str:
    """A short hash of the weights' shapes and a sample of their values, and of any peft adapters the
    layers hold (a pipeline's own LoRA, loaded and not fused: `Model.from_pipeline`)."""
    digest = hashlib.sha256()
    for part in parts:
        parameters = list(part.parameters())
        digest.update(str([tuple(p.shape) for p in parameters]).encode())
        for weight in (parameters[0], parameters[-1]):
            digest.update(weight.detach().flatten()[:4096].float().cpu().numpy().tobytes())
    for part in parts:
        hash_adapters(part, digest)
    return digest.hexdigest()[:16]


def hash_adapters(part: torch.nn.Module, digest) -> None:
    """Each peft LoRA layer's adapter weights, scales and state (active, merged) into `digest`."""
    for name, layer in part.named_modules():
        scaling = getattr(layer, "scaling", None)
        if not (isinstance(scaling, dict) and hasattr(layer, "lora_A")):
            continue
        state = (name, sorted(scaling.items()), getattr(layer, "active_adapters", None),
                 getattr(layer, "merged_adapters", None), getattr(layer, "disable_adapters", None))
        digest.update(repr(state).encode())
        for adapters in (layer.lora_A, layer.lora_B):
            for weight in adapters.parameters():
                digest.update(weight.detach().float().cpu().numpy().tobytes())


def with_loras(base: str, loras) -> str:
    """The fingerprint of the base weights `base` with `loras` (LoraRecords) fused in, in order."""
    if not loras:
        return base
    digest = hashlib.sha256(base.encode())
    for lora in loras:
        digest.update(f"{lora.sha256}:{lora.scale!r}".encode())
    return digest.hexdigest()[:16]


def with_prediction_type(base: str, prediction_type: str) -> str:
    """The fingerprint of weights `base` read with another prediction type than their config's (a
    single file's --prediction-type): another model, since editing samples with the model's schedule."""
    return hashlib.sha256(f"{base}:{prediction_type}".encode()).hexdigest()[:16]
