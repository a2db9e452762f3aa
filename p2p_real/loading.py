"""`load_model`: a model by hub id, local diffusers folder or built-in name, on a checked device.

The family (SD 1.x/2.x, SDXL or SD3) is read from the denoiser's config: SDXL's UNet takes the pooled
text and size conditioning (`addition_embed_type: text_time`); SD3 / SD3.5 has a transformer/ whose
config names `SD3Transformer2DModel`, whatever the folder is called.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    SD3Transformer2DModel,
    UNet2DConditionModel,
)

from .defaults import BUILTIN_MODELS, DEFAULT_MODEL, DTYPE_NAMES
from .errors import ModelLoadError, OptionError
from .hub import load_local_first
from .models import Model
from .random_models import BUILDERS
from .random_sd3 import SD3_BUILDERS
from .sd3_text import load_sd3_text
from .text_encoders import load_text

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
SHAPES_FOLDER = Path(__file__).parent / "assets" / "shapes"  # trained by p2p_real/shapes/train.py (docs/SHAPES.md)


SMALL_GPU_GIB = 24  # below this, the text encoders wait in CPU memory between prompts (SDXL fits in 16 GB)


def load_model(name_or_path: str = DEFAULT_MODEL, device: str | None = None, dtype: str | torch.dtype = "auto",
               cuda_graphs: bool = True, compile: bool = False, offload_text_encoders: bool | None = None) -> Model:
    """A model by hub id (e.g. CompVis/stable-diffusion-v1-4, stabilityai/stable-diffusion-xl-base-1.0),
    local diffusers folder, or built-in name.

    Built-ins: `shapes` (a small model of SD v1's family trained on generated shape scenes, shipped
    with the package: offline demos that show real edits), `tiny-random` and `tiny-sdxl-random`
    (seconds-fast random-weight models of the SD v1 and SDXL families, for tests and smoke runs),
    `sd-v1-random` and `sdxl-random` (the full architectures with random weights, for speed and memory).
    `dtype="auto"` is float16 on a CUDA device and float32 elsewhere; an SDXL VAE whose config says
    `force_upcast` stays float32. On a CUDA device the UNet runs channels-last and, unless
    `cuda_graphs=False`, replayed from CUDA graphs (`compile`: compiled first, see
    `Model.use_cuda_graphs`): the same arithmetic, far fewer kernel launches (docs/BENCHMARKS.md).
    `offload_text_encoders` (None: on a GPU of less than 24 GiB) keeps the text encoders in CPU
    memory except while they encode prompts (`Model.offload_text`).
    """
    device = usable_device(device)
    if compile and not (torch.device(device).type == "cuda" and cuda_graphs):
        raise OptionError("compile", f"compiling the UNet needs a CUDA device with CUDA graphs on, not {device}; "
                                     f"leave it off")
    if dtype == "auto":
        dtype = "float16" if torch.device(device).type == "cuda" else "float32"
    torch_dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    if name_or_path == "shapes":
        model = load_pretrained(str(SHAPES_FOLDER), name="shapes")
    elif name_or_path in {**BUILDERS, **SD3_BUILDERS}:
        model = {**BUILDERS, **SD3_BUILDERS}[name_or_path](device=device)
    else:
        model = load_pretrained(name_or_path)
    if offload_text_encoders is None:
        offload_text_encoders = (device.type == "cuda"
                                 and torch.cuda.get_device_properties(device).total_memory < SMALL_GPU_GIB * 2**30)
    model.offload_text = offload_text_encoders and device.type != "cpu"
    model.to(device=device, dtype=torch_dtype)
    if model.device.type == "cuda":
        torch.cuda.empty_cache()  # a model built on the GPU in float32 leaves the freed copy cached: give it back
        model.denoiser.to(memory_format=torch.channels_last)
        if cuda_graphs:
            model.use_cuda_graphs(compile)
    return model


def usable_device(device: str | torch.device | None) -> torch.device:
    """`device` (None: CUDA when there is a GPU), checked to exist here before any weights load."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise OptionError("device", f"{device!r} is not a device; use cpu, cuda, cuda:N or mps") from None
    gpus = torch.cuda.device_count() if parsed.type == "cuda" else 0
    if parsed.type == "cuda" and (parsed.index or 0) >= gpus:
        here = (f"only {gpus} CUDA device(s) here, cuda:0 to cuda:{gpus - 1}" if gpus
                else "no CUDA GPU is available here")
        raise OptionError("device", f"{here}, so not {device!r}; use another device, or cpu")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise OptionError("device", f"no Apple GPU (MPS) is available here, so not {device!r}; use cpu")
    return parsed


def load_pretrained(name_or_path: str, name: str | None = None) -> Model:
    def load(source: str, local_only: bool) -> Model:
        options = {"local_files_only": local_only}
        if denoiser_class(source, options) == SD3Transformer2DModel.__name__:
            return load_sd3(source, name or name_or_path, options)
        unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", **options)
        sdxl = unet.config.addition_embed_type == "text_time"
        vae = AutoencoderKL.from_pretrained(source, subfolder="vae", **options)
        text = load_text(source, sdxl, sdxl and zeros_for_empty_prompt(source, local_only), **options)
        scheduler_config = dict(DDIMScheduler.load_config(source, subfolder="scheduler", **options))
        return Model(unet, vae, text, scheduler_config, name=name or name_or_path,
                     upcast_vae=sdxl and vae.config.force_upcast)

    if not Path(name_or_path).expanduser().is_dir() and name_or_path.count("/") != 1:
        raise ModelLoadError(
            f"model {name_or_path!r}: not a folder and not a hub id like '{DEFAULT_MODEL}'; "
            f"built-in names are {', '.join(BUILTIN_MODELS)}"
        )
    return load_local_first(load, name_or_path, "model", ModelLoadError, "--model",
                            " as a diffusers Stable Diffusion folder (unet/, vae/, text_encoder/, tokenizer/, "
                            "scheduler/; SDXL also text_encoder_2/, tokenizer_2/; SD3 transformer/ for unet/ "
                            "and text_encoder_3/, tokenizer_3/)")


def denoiser_class(source: str, options: dict) -> str | None:
    """The class its transformer/config.json names, if it has one (SD3's); None for a UNet model."""
    try:
        return SD3Transformer2DModel.load_config(source, subfolder="transformer", **options).get("_class_name")
    except (OSError, ValueError):
        return None


def load_sd3(source: str, name: str, options: dict) -> Model:
    """SD3 / SD3.5 (medium, large): the transformer, the 16-channel VAE (float32 when `force_upcast`),
    CLIP-L, CLIP-G and T5, and the flow-matching scheduler's config."""
    transformer = SD3Transformer2DModel.from_pretrained(source, subfolder="transformer", **options)
    vae = AutoencoderKL.from_pretrained(source, subfolder="vae", **options)
    text = load_sd3_text(source, transformer.config.joint_attention_dim, **options)
    scheduler_config = dict(FlowMatchEulerDiscreteScheduler.load_config(source, subfolder="scheduler", **options))
    return Model(transformer, vae, text, scheduler_config, name=name, upcast_vae=bool(vae.config.force_upcast))


def zeros_for_empty_prompt(source: str, local_only: bool) -> bool:
    """model_index.json's `force_zeros_for_empty_prompt` (SDXL pipelines default to true)."""
    try:
        index = DiffusionPipeline.load_config(source, local_files_only=local_only)
    except (OSError, ValueError):
        return True
    return bool(index.get("force_zeros_for_empty_prompt", True))
