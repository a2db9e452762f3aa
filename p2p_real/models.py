"""Load a Stable Diffusion model by hub id or folder, or build a random-weight one from configs.

`Model` is the one place that knows diffusers and transformers: the inversion and editing code
only calls `encode`, `decode`, `embed` and `denoise` (k-diffusion's model-wrapper idea).
"""
from __future__ import annotations

import gzip
import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from .attention import FusedAttention, keep_text_projections_in_fp32
from .defaults import BUILTIN_MODELS, DEFAULT_MODEL, DTYPE_NAMES
from .errors import ModelLoadError, OptionError, PromptError
from .hub import load_local_first
from .sampling import Denoise
from .schedule import Schedule

if TYPE_CHECKING:  # editing imports this module; the names are for readers and type checkers
    from .editing.plan import EditPlan
    from .editing.state import EditState

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
SHAPES_FOLDER = Path(__file__).parent / "assets" / "shapes"  # trained by p2p_real/shapes/train.py (docs/SHAPES.md)

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


@dataclass
class Model:
    """The four parts of an SD pipeline that inversion and editing need, plus where they came from."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler_config: dict
    name: str
    fingerprint: str = field(default="")
    graphs: object | None = field(default=None, repr=False)  # a CudaGraphDenoiser, once enabled
    controlling: bool = field(default=False, repr=False)  # inside `controlled(plan)`

    def __post_init__(self):
        for part in (self.unet, self.vae, self.text_encoder):
            part.requires_grad_(False).eval()
        self.unet.set_attn_processor(FusedAttention())  # SDPA that takes the embedding in any precision
        if not self.fingerprint:
            self.fingerprint = fingerprint(self)

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def vae_scale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def resolution(self) -> int:
        """Side of the square images the model was trained on (512 for SD v1)."""
        return self.unet.config.sample_size * self.vae_scale

    @property
    def max_tokens(self) -> int:
        return self.tokenizer.model_max_length

    def schedule(self, num_steps: int) -> Schedule:
        return Schedule.from_scheduler_config(self.scheduler_config, num_steps)

    def to(self, device=None, dtype=None) -> "Model":
        for part in (self.unet, self.vae, self.text_encoder):
            part.to(device=device)
            if dtype not in (None, part.dtype):
                cast_floating_point(part, dtype)
        if dtype in (torch.float16, torch.bfloat16):
            keep_text_projections_in_fp32(self.unet)  # see p2p_real/attention.py for why
        return self

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> latents: the VAE posterior mean, scaled (not a sample)."""
        pixels = (images * 2 - 1).to(self.device, self.vae.dtype)
        mean = self.vae.encode(pixels).latent_dist.mean
        return full_precision(mean) * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> (B, 3, H, W) float32 in [0, 1]."""
        pixels = self.vae.decode((latents / self.vae.config.scaling_factor).to(self.vae.dtype)).sample
        return ((pixels.float() + 1) / 2).clamp(0, 1)

    def token_ids(self, prompts: list[str]) -> torch.Tensor:
        """Token ids padded to the encoder's length; a prompt that does not fit is an error."""
        for prompt in prompts:
            count = len(self.tokenizer(prompt, verbose=False).input_ids)
            if count > self.max_tokens:
                shown = prompt if len(prompt) <= 60 else prompt[:57] + "..."
                raise PromptError(
                    f"the prompt {shown!r} is {count} tokens long; the text encoder takes at most "
                    f"{self.max_tokens} (start and end included): shorten it"
                )
        batch = self.tokenizer(prompts, padding="max_length", max_length=self.max_tokens, return_tensors="pt")
        return batch.input_ids

    @torch.no_grad()
    def embed(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> (B, max_tokens, D) float32 text embeddings (the encoder's last hidden state)."""
        ids = self.token_ids(prompts).to(self.device)
        return full_precision(self.text_encoder(ids)[0])

    def denoise(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        """The UNet's raw prediction (epsilon or v), in float32 for a half-precision model, so that the
        schedule's arithmetic and losses stay in full precision (float64 stays float64). The
        embeddings go in as they are: a half-precision UNet reads them with float32 projections.
        Replayed from CUDA graphs once `use_cuda_graphs()` was called."""
        if self.controlling:
            # A graph captured before the edit would replay the plain UNet: never let that happen silently.
            raise RuntimeError("model.denoise was called inside model.controlled(plan); use the denoise it yields")
        if self.graphs is not None:
            return self.graphs(latents, timestep, embeddings)
        return self.denoise_eager(latents, timestep, embeddings)

    def denoise_eager(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        """`denoise` through the UNet's modules: the path that attention processors see."""
        output = self.unet(latents.to(self.dtype), timestep, encoder_hidden_states=embeddings).sample
        return output.to(full_precision(latents).dtype)

    @contextmanager
    def controlled(self, plan):
        """`with model.controlled(plan) as denoise:` runs the UNet under a Prompt-to-Prompt plan.

        Installs the editing processors with a fresh `EditState` (`denoise.state`), yields the
        `denoise` to sample with (replayed from CUDA graphs captured inside this block when graphs
        are on: a capture bakes in the processors, so it never outlives the block), and restores
        the previous processors, even on error. After a clean exit it checks that the plan reached
        some attention layer: the reference code's silent failure was an edit that edited nothing.
        """
        from .editing.attention import EditingAttention
        from .editing.state import EditState

        if self.controlling:
            raise RuntimeError("model.controlled(...) blocks cannot nest")
        plan = plan.to(self.device)
        state = EditState(self.device)
        previous = dict(self.unet.attn_processors)  # set_attn_processor consumes the dict it is given
        self.unet.set_attn_processor({name: EditingAttention(plan, state, name) for name in previous})
        self.controlling = True
        try:
            if self.graphs is None:
                yield ControlledDenoise(self.denoise_eager, plan, state)
            else:
                from .graphs import CudaGraphDenoiser

                yield ControlledDenoise(CudaGraphDenoiser(self.unet, self.dtype), plan, state)
        finally:
            self.unet.set_attn_processor(previous)
            self.controlling = False
        if state.layers_seen == 0:
            raise RuntimeError("no attention layer reached the edit; it would equal plain generation")

    def use_cuda_graphs(self, compile: bool = False) -> "Model":
        """Replay the UNet from CUDA graphs (captured per batch shape): far fewer launches per step.
        With `compile`, what is captured is the UNet compiled by torch.compile: fused kernels, about
        1.4x faster again at batch 1, after minutes of compilation per batch size. Only `denoise`
        uses it: edits change the attention processors, which would recompile it every edit."""
        if self.device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device; this model is on " + str(self.device))
        from .graphs import CudaGraphDenoiser

        self.graphs = CudaGraphDenoiser(torch.compile(self.unet) if compile else self.unet, self.dtype)
        return self

    def save(self, folder: str | os.PathLike) -> None:
        """Write a diffusers-layout folder that `load_model(folder)` reads back."""
        folder = Path(folder)
        self.unet.save_pretrained(folder / "unet")
        self.vae.save_pretrained(folder / "vae")
        self.text_encoder.save_pretrained(folder / "text_encoder")
        self.tokenizer.save_pretrained(folder / "tokenizer")
        DDIMScheduler.from_config(self.scheduler_config).save_pretrained(folder / "scheduler")


@dataclass
class ControlledDenoise:
    """The `denoise` of a `Model.controlled` block, with the plan it runs and its state."""

    denoise: Denoise
    plan: "EditPlan"
    state: "EditState"

    def __call__(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        return self.denoise(latents, timestep, embeddings)


FLOATING_POINT_CASTS = {torch.float16: "half", torch.bfloat16: "bfloat16", torch.float32: "float", torch.float64: "double"}


def cast_floating_point(part: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast a part's floating-point weights, as `part.to(dtype=...)` does. diffusers' `ModelMixin.to`
    warns that "modules should be kept in float32" whenever a dtype is passed, even for models that
    keep none (its `_keep_in_fp32_modules or []` is never None): SD's UNet and VAE keep none, so
    they are cast with torch's own floating-point casts, which leave integer buffers alone too."""
    if getattr(part, "_keep_in_fp32_modules", None):  # a model that does keep some: let the library handle it
        part.to(dtype=dtype)
    else:
        getattr(part, FLOATING_POINT_CASTS[dtype])()


def full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """Half precision -> float32; float32 and float64 stay as they are."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def fingerprint(model: Model) -> str:
    """A short hash of the weights' shapes and a sample of their values, to tie artifacts to a model."""
    digest = hashlib.sha256()
    for part in (model.unet, model.vae, model.text_encoder):
        parameters = list(part.parameters())
        digest.update(str([tuple(p.shape) for p in parameters]).encode())
        for weight in (parameters[0], parameters[-1]):
            digest.update(weight.detach().flatten()[:4096].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_model(name_or_path: str = DEFAULT_MODEL, device: str | None = None, dtype: str | torch.dtype = "auto",
               cuda_graphs: bool = True, compile: bool = False) -> Model:
    """A model by hub id (e.g. CompVis/stable-diffusion-v1-4), local diffusers folder, or built-in name.

    Built-ins: `shapes` (a small model of SD v1's family trained on generated shape scenes, shipped
    with the package: offline demos that show real edits), `tiny-random` (a seconds-fast random-weight
    model for tests and smoke runs) and `sd-v1-random` (the full SD v1 architecture with random
    weights, for speed measurements).
    `dtype="auto"` is float16 on a CUDA device and float32 elsewhere. On a CUDA device the UNet runs
    channels-last and, unless `cuda_graphs=False`, replayed from CUDA graphs (`compile`: compiled
    first, see `Model.use_cuda_graphs`): the same arithmetic,
    far fewer kernel launches (docs/BENCHMARKS.md).
    """
    device = usable_device(device)
    if compile and not (torch.device(device).type == "cuda" and cuda_graphs):
        raise OptionError("compile", f"compiling the UNet needs a CUDA device with CUDA graphs on, not {device}; leave it off")
    if dtype == "auto":
        dtype = "float16" if torch.device(device).type == "cuda" else "float32"
    torch_dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    if name_or_path == "shapes":
        model = load_pretrained(str(SHAPES_FOLDER), name="shapes")
    elif name_or_path == "tiny-random":
        model = tiny_random()
    elif name_or_path == "sd-v1-random":
        model = sd_v1_random()
    else:
        model = load_pretrained(name_or_path)
    model.to(device=device, dtype=torch_dtype)
    if model.device.type == "cuda":
        model.unet.to(memory_format=torch.channels_last)
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
        here = f"only {gpus} CUDA device(s) here, cuda:0 to cuda:{gpus - 1}" if gpus else "no CUDA GPU is available here"
        raise OptionError("device", f"{here}, so not {device!r}; use another device, or cpu")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise OptionError("device", f"no Apple GPU (MPS) is available here, so not {device!r}; use cpu")
    return parsed


def load_pretrained(name_or_path: str, name: str | None = None) -> Model:
    def load(source: str, local_only: bool) -> Model:
        options = {"local_files_only": local_only}
        unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", **options)
        vae = AutoencoderKL.from_pretrained(source, subfolder="vae", **options)
        text_encoder = CLIPTextModel.from_pretrained(source, subfolder="text_encoder", **options)
        tokenizer = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **options)
        scheduler_config = dict(DDIMScheduler.load_config(source, subfolder="scheduler", **options))
        return Model(unet, vae, text_encoder, tokenizer, scheduler_config, name=name or name_or_path)

    if not Path(name_or_path).expanduser().is_dir() and name_or_path.count("/") != 1:
        raise ModelLoadError(
            f"model {name_or_path!r}: not a folder and not a hub id like '{DEFAULT_MODEL}'; "
            f"built-in names are {', '.join(BUILTIN_MODELS)}"
        )
    return load_local_first(load, name_or_path, "model", ModelLoadError, "--model",
                            " as a diffusers Stable Diffusion folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/)")


# ---- random-weight models built from configs ----------------------------------------------------


def tiny_random(seed: int = 0, prediction_type: str = "epsilon") -> Model:
    """A small model of SD v1's family: 128x128 images, 16x16 latents, real CLIP tokenisation.

    Three UNet levels with cross-attention at the two finer ones (SD v1 has four, the coarsest
    without), a 4-level VAE (so the latent is 1/8 of the image, as in SD), a 2-layer CLIP encoder.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
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
        vae = AutoencoderKL(
            block_out_channels=(16, 16, 32, 32),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=16,
            sample_size=128,
            scaling_factor=0.18215,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu")
        )
    scheduler_config = {**SD_V1_SCHEDULER, "prediction_type": prediction_type}
    return Model(unet, vae, text_encoder, clip_tokenizer(), scheduler_config, name="tiny-random")


def sd_v1_random(seed: int = 0) -> Model:
    """The full-size SD v1 architecture (UNet 320/640/1280/1280, ViT-L/14 text encoder, SD VAE),
    seeded random weights. Speed does not depend on weight values, so it serves GPU benchmarks."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # defaults are SD v1's
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=512,
            scaling_factor=0.18215,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                           num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu")
        )
    return Model(unet, vae, text_encoder, clip_tokenizer(), dict(SD_V1_SCHEDULER), name="sd-v1-random")


def clip_tokenizer() -> CLIPTokenizer:
    """CLIP's real BPE tokenizer (49,408 tokens), from the vocabulary file shipped with the package."""
    vocab, merges = clip_vocabulary()
    return CLIPTokenizer(vocab=dict(vocab), merges=[tuple(line.split()) for line in merges], model_max_length=77)


@lru_cache(maxsize=1)
def clip_vocabulary() -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    # The file lists CLIP's BPE merges (MIT licence, openai/CLIP); the vocabulary follows from them
    # exactly as CLIP builds it: 256 byte symbols, the same with "</w>", each merge, two specials.
    raw = (Path(__file__).parent / "assets" / "bpe_simple_vocab_16e6.txt.gz").read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [symbol + "</w>" for symbol in symbols] + ["".join(line.split()) for line in lines]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return tuple((token, index) for index, token in enumerate(tokens)), tuple(lines)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, characters)))
