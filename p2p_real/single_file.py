"""Single-file checkpoints: one `.safetensors` file (or a `.ckpt` that loads without unpickling
code) in the original LDM / SGM key layout, the format of AUTOMATIC1111's and ComfyUI's model
folders, loaded offline through diffusers' single-file loading.

The family is read from the keys (SDXL's second text encoder `conditioner.embedders.1`, SD 2.x's
OpenCLIP `cond_stage_model.model`, SD 1.x's CLIP `cond_stage_model.transformer`), and diffusers
builds each part from the family's configs, which ship with the package (JSON only, in
p2p_real/assets/single_file/: SD 1.5, SD 2.1 768-v and SDXL base 1.0), so nothing is fetched. The
tokenizers are CLIP's, built from the BPE file that ships too. v-prediction cannot be read from the
weights: SD 2.x files default to it (the 768-v models, SD 2.x's usual release), and
`prediction_type` overrides (`--prediction-type epsilon` for SD 2.x base at 512 px). A checkpoint
of another architecture (another size, 9-channel inpainting, a fine-tune of a small model) loads
with `config`, a diffusers folder of configs (model_index.json and each part's config.json), which
is also how the tests load tiny random checkpoints.
"""
from __future__ import annotations

import json
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.loaders.single_file_utils import SingleFileComponentError

from .clip_tokenizer import clip_tokenizer
from .errors import ModelLoadError, OptionError
from .models import Model

CONFIGS = Path(__file__).parent / "assets" / "single_file"
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")
UNET_PREFIX = "model.diffusion_model."
PREDICTION_TYPES = ("epsilon", "v_prediction")
END_OF_TEXT = "<|endoftext|>"


@dataclass(frozen=True)
class CheckpointKind:
    """A family as its single files show it: the key prefix only its files have, its shipped configs,
    its diffusers pipeline, and the padding token of each tokenizer (SD 2.x's OpenCLIP pads with "!")."""

    name: str
    marker: str
    config: str  # folder under assets/single_file
    pipeline: type
    pad_tokens: tuple[str, ...]
    without_safety_checker: bool  # the SD pipeline's safety checker, which p2p-real never runs


KINDS = (  # the most specific marker first: SDXL files hold an SD 1.x-like CLIP too
    CheckpointKind("SDXL", "conditioner.embedders.1.", "sdxl-base", StableDiffusionXLPipeline,
                   (END_OF_TEXT, "!"), False),
    CheckpointKind("SD 2.x", "cond_stage_model.model.", "sd-v2", StableDiffusionPipeline, ("!",), True),
    CheckpointKind("SD 1.x", "cond_stage_model.transformer.", "sd-v1", StableDiffusionPipeline, (END_OF_TEXT,), True),
)


def is_checkpoint_file(name_or_path) -> bool:
    """A path to a file with a checkpoint's suffix (a hub id or a folder is not)."""
    path = Path(name_or_path).expanduser()
    return path.suffix.lower() in CHECKPOINT_SUFFIXES and path.is_file()


def checkpoint_keys(path: Path) -> list[str]:
    """The tensor names of a checkpoint file, checked to be whole: ModelLoadError of one line otherwise."""
    if path.suffix.lower() == ".safetensors":
        return safetensors_keys(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        raise ModelLoadError(f"model {path}: this checkpoint holds Python objects that only unpickling arbitrary code "
                             f"would read, which p2p-real refuses; use the model's .safetensors file") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelLoadError(f"model {path}: not a readable checkpoint, truncated or of another format "
                             f"({str(error).splitlines()[0][:100]})") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else {}
    return [key for key in state if isinstance(key, str)]


def safetensors_keys(path: Path) -> list[str]:
    """The names in a safetensors file's header, and a check that the file holds all the bytes the
    header promises (a download cut short is refused here, not deep inside the loading)."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as file:
            (header_size,) = struct.unpack("<Q", file.read(8))
            if header_size > size - 8:
                raise ValueError("the header runs past the end of the file")
            header = json.loads(file.read(header_size))
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"model {path}: not a safetensors file ({error}); give a Stable Diffusion "
                             f"checkpoint's .safetensors file") from None
    if 8 + header_size + max(ends, default=0) > size:
        raise ModelLoadError(f"model {path}: truncated ({size} bytes, the header promises "
                             f"{8 + header_size + max(ends)}); download it again")
    return [name for name in header if name != "__metadata__"]


def checkpoint_kind(path: Path, keys: list[str]) -> CheckpointKind:
    if not any(key.startswith(UNET_PREFIX) for key in keys):
        shown = ", ".join(keys[:2]) or "no tensors"
        raise ModelLoadError(f"model {path}: not a Stable Diffusion checkpoint (no UNet weights {UNET_PREFIX}*; "
                             f"its keys are like {shown}); give an SD 1.x, 2.x or SDXL checkpoint "
                             f"(a LoRA goes with --lora)")
    for kind in KINDS:
        if any(key.startswith(kind.marker) for key in keys):
            return kind
    raise ModelLoadError(f"model {path}: a checkpoint without a text encoder of SD 1.x, 2.x or SDXL; "
                         f"give a full Stable Diffusion checkpoint")


def check_prediction_type(prediction_type: str | None) -> None:
    if prediction_type is not None and prediction_type not in PREDICTION_TYPES:
        raise OptionError("prediction_type", f"expected one of {', '.join(PREDICTION_TYPES)}, got {prediction_type!r}")


def load_checkpoint(path: str, config: str | None = None) -> Model:
    """The model in a single checkpoint file, offline: its family from its keys, each part built by
    diffusers from the family's shipped configs (or `config`'s, a diffusers folder of configs)."""
    file = Path(path).expanduser()
    kind = checkpoint_kind(file, checkpoint_keys(file))
    config_folder = Path(config).expanduser() if config else CONFIGS / kind.config
    if not (config_folder / "model_index.json").is_file():
        raise ModelLoadError(f"model config {config_folder}: no model_index.json; give a diffusers folder of "
                             f"configs (model_index.json, unet/, vae/, text_encoder/, scheduler/)")
    tokenizers = {name: clip_tokenizer(pad_token=pad) for name, pad in zip(("tokenizer", "tokenizer_2"),
                                                                          kind.pad_tokens)}
    extra = {"safety_checker": None, "feature_extractor": None} if kind.without_safety_checker else {}
    try:
        pipeline = kind.pipeline.from_single_file(str(file), config=str(config_folder), local_files_only=True,
                                                  **tokenizers, **extra)
    except (OSError, ValueError, KeyError, RuntimeError, SingleFileComponentError) as error:
        raise ModelLoadError(f"model {file}: could not load it as an {kind.name} checkpoint with the configs in "
                             f"{config_folder} ({str(error).strip().splitlines()[0][:160]})") from None
    unloaded = [name for name, part in pipeline.components.items()
                if isinstance(part, torch.nn.Module) and any(weight.is_meta for weight in part.parameters())]
    if unloaded:
        raise ModelLoadError(f"model {file}: the checkpoint lacks weights of its {', '.join(unloaded)} for the "
                             f"{kind.name} configs in {config_folder}; give a complete checkpoint")
    return Model.from_pipeline(pipeline, name=str(path))
