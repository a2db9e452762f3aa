"""`load_model`: a model by hub id, local diffusers folder, built-in name or a diffusers pipeline
already loaded, with LoRA files fused in (loras.py), on a checked device.

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
from .fingerprints import with_prediction_type
from .hub import load_local_first
from .loras import fuse_loras
from .models import Model
from .random_models import BUILDERS
from .random_sd3 import SD3_BUILDERS
from .sd3_text import load_sd3_text
from .single_file import check_prediction_type, is_checkpoint_file, load_checkpoint
from .text_encoders import load_text

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
SHAPES_FOLDER = Path(__file__).parent / "assets" / "shapes"  # trained by p2p_real/shapes/train.py (docs/SHAPES.md)


SMALL_GPU_GIB = 24  # below this, the text encoders wait in CPU memory between prompts (SDXL fits in 16 GB)


def load_model(name_or_path: str | DiffusionPipeline = DEFAULT_MODEL, device: str | None = None,
               dtype: str | torch.dtype = "auto", cuda_graphs: bool = True, compile: bool = False,
               offload_text_encoders: bool | None = None, loras=(), prediction_type: str | None = None,
               model_config: str | None = None) -> Model:
    """A model by hub id (e.g. CompVis/stable-diffusion-v1-4, stabilityai/stable-diffusion-xl-base-1.0),
    local diffusers folder, single-file checkpoint (`.safetensors`, SD 1.x / 2.x / SDXL, loaded
    offline: single_file.py; `model_config`: a diffusers folder of configs for a file of another
    architecture), built-in name, or a diffusers StableDiffusionPipeline / StableDiffusionXLPipeline
    you already hold (`Model.from_pipeline`: its modules as they are, LoRA adapters included;
    `device` and `dtype` default to the pipeline's own). `prediction_type` ("epsilon" or
    "v_prediction") overrides the scheduler config's, which a single file cannot tell.

    Built-ins: `shapes` (a small model of SD v1's family trained on generated shape scenes, shipped
    with the package: offline demos that show real edits), `tiny-random` and `tiny-sdxl-random`
    (seconds-fast random-weight models of the SD v1 and SDXL families, for tests and smoke runs),
    `sd-v1-random` and `sdxl-random` (the full architectures with random weights, for speed and memory).
    `loras`: (path to a LoRA .safetensors file, scale) pairs, fused into the weights in order (loras.py).
    `dtype="auto"` is float16 on a CUDA device and float32 elsewhere; an SDXL VAE whose config says
    `force_upcast` stays float32. On a CUDA device the UNet runs channels-last and, unless
    `cuda_graphs=False`, replayed from CUDA graphs (`compile`: compiled first, see
    `Model.use_cuda_graphs`): the same arithmetic, far fewer kernel launches (docs/BENCHMARKS.md).
    `offload_text_encoders` (None: on a GPU of less than 24 GiB) keeps the text encoders in CPU
    memory except while they encode prompts (`Model.offload_text`).
    """
    held = isinstance(name_or_path, DiffusionPipeline)
    device = usable_device(name_or_path.unet.device if held and device is None else device)
    if compile and not (torch.device(device).type == "cuda" and cuda_graphs):
        raise OptionError("compile", f"compiling the UNet needs a CUDA device with CUDA graphs on, not {device}; "
                                     f"leave it off")
    if held and loras:
        raise OptionError("loras", "a pipeline you hold keeps its own LoRA: load it into the pipeline "
                                   "(pipe.load_lora_weights(FILE)) and pass the pipeline alone")
    if dtype == "auto":
        dtype = name_or_path.unet.dtype if held else "float16" if torch.device(device).type == "cuda" else "float32"
    torch_dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    check_prediction_type(prediction_type)
    model = source_model(name_or_path, device, model_config)
    if prediction_type not in (None, model.scheduler_config.get("prediction_type", "epsilon")):
        model.scheduler_config["prediction_type"] = prediction_type
        model.fingerprint = with_prediction_type(model.fingerprint, prediction_type)
    if loras:  # fused in the more precise of the loaded and the asked precision: float32 for a half-precision run
        model.to(dtype=torch.promote_types(model.dtype, torch_dtype))
        fuse_loras(model, loras)
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


def source_model(name_or_path, device: torch.device, model_config: str | None = None) -> Model:
    """The model as its source holds it: a pipeline's modules, a built-in, or weights from disk or the hub."""
    if isinstance(name_or_path, DiffusionPipeline):
        return Model.from_pipeline(name_or_path)
    if is_checkpoint_file(name_or_path):
        return load_checkpoint(name_or_path, model_config)
    if model_config is not None:
        raise OptionError("model_config", f"configs for a single-file checkpoint, and {name_or_path!r} is none; "
                                          f"leave it out")
    if name_or_path == "shapes":
        return load_pretrained(str(SHAPES_FOLDER), name="shapes")
    if name_or_path in BUILDERS or name_or_path in SD3_BUILDERS:
        return {**BUILDERS, **SD3_BUILDERS}[name_or_path](device=device)
    return load_pretrained(name_or_path)


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
