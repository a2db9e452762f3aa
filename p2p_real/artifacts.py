"""The `Inversion` record, and its files: tensors in safetensors, settings in JSON, written atomically.

A folder per photo holds `inversion.safetensors`, `inversion.json` (the record: written last, so
that its presence means the artifact is complete, and removed first when an artifact is replaced),
and `source.png` / `reconstruction.png` for people to look at. The record says what made the
artifact (photo bytes, prompt, model, method, steps, guidance, options), so that a run reuses it only
for the same work (runs/invert.py).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from .errors import ArtifactError
from .images import write_atomic

FORMAT = "p2p-real/inversion"
FORMAT_VERSION = 1
TENSORS_FILE = "inversion.safetensors"
METADATA_FILE = "inversion.json"


@dataclass
class Inversion:
    """Everything editing needs to reproduce a photo, and how it was made."""

    prompt: str
    noise_latents: torch.Tensor  # (C, h, w): x_T
    null_text_embeddings: torch.Tensor  # (steps, L, D): the unconditional embedding per sampling step
    image: torch.Tensor  # (H, W, 3) uint8: the photo as the model saw it (cropped, resized)
    reconstruction: torch.Tensor  # (H, W, 3) uint8: guided sampling from x_T with the embeddings
    method: str  # "null-text", "ddim", ...
    num_steps: int
    guidance_scale: float
    model_name: str
    model_fingerprint: str
    scheduler_config: dict
    options: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    source_path: str = ""
    source_sha256: str = ""  # of the photo file's bytes: which photo this is, wherever it moves
    latent_offsets: torch.Tensor | None = None  # (steps, C, h, w): Direct Inversion's source-branch offsets
    # The sampling schedule it was made with: DDIM's timesteps, or a flow model's timesteps and shifted sigmas.
    schedule: dict = field(default_factory=dict)
    # Per sampling step, what the method reports of itself; null-text: final_loss, early_stop_threshold,
    # reached_threshold and inner_steps, since non-convergence is what users of the reference meet.
    diagnostics: dict = field(default_factory=dict)
    model_loras: list = field(default_factory=list)  # LoRAs fused into the model: file, path, sha256, scale

    def metadata(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # not asdict: it would deep-copy the tensors
        data = {key: value for key, value in data.items() if not isinstance(value, torch.Tensor) and value is not None}
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **data}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {key: value.contiguous().cpu() for key, value in vars(self).items() if isinstance(value, torch.Tensor)}


def save_inversion(inversion: Inversion, folder: str | os.PathLike) -> Path:
    """The tensors, then the record; an earlier record goes first, so a write cut short leaves none."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / METADATA_FILE).unlink(missing_ok=True)
    data = save(inversion.tensors())  # bytes written by us, so that the file gets the user's umask
    write_atomic(folder / TENSORS_FILE, data)
    metadata = {**inversion.metadata(), "tensors_sha256": hashlib.sha256(data).hexdigest()}
    write_atomic(folder / METADATA_FILE, (json.dumps(metadata, indent=2) + "\n").encode())
    return folder


def tensors_sha256(inversion: Inversion) -> str:
    """What `tensors_sha256` in inversion.json records: SHA-256 of the inversion's tensors as saved,
    which tells one inversion's content from another's."""
    return hashlib.sha256(save(inversion.tensors())).hexdigest()


def read_record(folder: str | os.PathLike) -> dict | None:
    """The artifact's record (inversion.json) as written, without reading the tensors; None when
    there is none yet. An ArtifactError when it is damaged, foreign or of another format version."""
    metadata_path = Path(folder) / METADATA_FILE
    try:
        metadata = json.loads(metadata_path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{metadata_path}: damaged JSON ({error}); re-run `p2p-real invert --force`") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ArtifactError(f"{metadata_path}: not a p2p-real inversion file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{metadata_path}: format version {metadata.get('format_version')} is not "
                            f"{FORMAT_VERSION}; re-invert the photo")
    return metadata


def load_inversion(path: str | os.PathLike, model=None) -> Inversion:
    """Read an artifact folder (or its inversion.json); with `model`, check it was made by that model."""
    path = Path(path)
    folder = path.parent if path.name in (METADATA_FILE, TENSORS_FILE) else path
    tensors_path = folder / TENSORS_FILE
    metadata = read_record(folder)
    if metadata is None:
        raise ArtifactError(f"{folder}: not an inversion artifact (no {METADATA_FILE}); run `p2p-real invert` first")
    try:
        data = tensors_path.read_bytes()  # read once: the bytes hashed are the bytes loaded
    except FileNotFoundError:
        raise ArtifactError(f"{tensors_path}: missing; re-run `p2p-real invert --force`") from None
    except OSError as error:
        raise ArtifactError(f"{tensors_path}: unreadable ({error}); re-run `p2p-real invert --force`") from None
    if hashlib.sha256(data).hexdigest() != metadata.get("tensors_sha256"):
        raise ArtifactError(f"{tensors_path}: truncated or modified since it was written; "
                            f"re-run `p2p-real invert --force`")
    try:
        tensors = load(data)
    except SafetensorError as error:
        raise ArtifactError(f"{tensors_path}: unreadable ({error}); re-run `p2p-real invert --force`") from None
    not_fields = ("format", "format_version", "tensors_sha256")
    fields = {key: value for key, value in metadata.items() if key not in not_fields}
    try:
        inversion = Inversion(**fields, **tensors)
    except TypeError as error:
        raise ArtifactError(f"{folder}: fields do not match this version of p2p-real ({error})") from None
    if inversion.null_text_embeddings.shape[0] != inversion.num_steps:
        raise ArtifactError(f"{tensors_path}: {inversion.null_text_embeddings.shape[0]} embeddings for "
                            f"{inversion.num_steps} steps")
    check_tensors(inversion, tensors_path)
    if model is not None:
        check_model(inversion, model, folder)
    return inversion


def check_tensors(inversion: Inversion, tensors_path: Path) -> None:
    """Tensors of the kinds an inversion holds: floating latents and embeddings with finite values,
    uint8 pictures. An artifact whose checksum was made to match other contents is named, not edited."""
    for name in ("noise_latents", "null_text_embeddings", "latent_offsets"):
        tensor = getattr(inversion, name)
        if tensor is not None and (not tensor.is_floating_point() or not torch.isfinite(tensor).all()):
            kind = "values that are not finite" if tensor.is_floating_point() else f"dtype {tensor.dtype}"
            raise ArtifactError(f"{tensors_path}: {name} holds {kind}; re-run `p2p-real invert --force`")
    if inversion.noise_latents.dim() != 3 or inversion.null_text_embeddings.dim() != 3:
        raise ArtifactError(f"{tensors_path}: latents of shape {tuple(inversion.noise_latents.shape)} and embeddings "
                            f"of shape {tuple(inversion.null_text_embeddings.shape)}, not (C, h, w) and (steps, L, D); "
                            f"re-run `p2p-real invert --force`")
    for name in ("image", "reconstruction"):
        picture = getattr(inversion, name)
        if picture.dtype != torch.uint8 or picture.dim() != 3 or picture.shape[-1] != 3:
            raise ArtifactError(f"{tensors_path}: {name} is not an (H, W, 3) uint8 picture; "
                                f"re-run `p2p-real invert --force`")


def check_model(inversion: Inversion, model, folder) -> None:
    if inversion.model_fingerprint != model.fingerprint:
        raise ArtifactError(f"{folder}: {model_difference(inversion, model)}")
    latent_side = model.denoiser.config.sample_size
    latents = (model.denoiser.config.in_channels, latent_side, latent_side)
    if tuple(inversion.noise_latents.shape) != latents or tuple(inversion.image.shape[:2]) != (model.resolution,) * 2:
        raise ArtifactError(f"{folder}: latents of shape {tuple(inversion.noise_latents.shape)} and a "
                            f"{inversion.image.shape[1]}x{inversion.image.shape[0]} picture do not fit {model.name!r}, "
                            f"which takes latents of shape {latents} and {model.resolution}x{model.resolution} "
                            f"pictures; re-run `p2p-real invert --force`")


def model_difference(inversion: Inversion, model) -> str:
    """What differs between the model an inversion was made with and `model`, and what to do: the
    first LoRA one has and the other lacks (by content and scale), else the base model."""
    made = [(lora["sha256"], lora["scale"]) for lora in inversion.model_loras]
    prediction = inversion.scheduler_config.get("prediction_type", "epsilon")
    if prediction != model.scheduler_config.get("prediction_type", "epsilon"):
        return (f"this inversion was made with prediction type {prediction}, which this model's config does not "
                f"say; pass --prediction-type {prediction} (or invert the photo again)")
    for lora in inversion.model_loras:
        if (lora["sha256"], lora["scale"]) not in [(given.sha256, given.scale) for given in model.loras]:
            return (f"this inversion was made with LoRA {lora['file']} at scale {lora['scale']:g}, which this model "
                    f"lacks; pass --lora {lora['path']}:{lora['scale']:g} (or invert the photo again)")
    for given in model.loras:
        if (given.sha256, given.scale) not in made:
            return (f"this inversion was made without LoRA {given.file} at scale {given.scale:g}; leave "
                    f"--lora {given.file} out (or invert the photo again with it)")
    return (f"this inversion was made with model {inversion.model_name!r} (fingerprint {inversion.model_fingerprint}), "
            f"not with {model.name!r} ({model.fingerprint}); pass --model {inversion.model_name} or invert the photo "
            f"again with this model")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
