"""The command line's checks, run before torch is imported as runs/flags.py builds a request: every
path and flag, and the output folder.

A problem is a P2PError of one line that names the flag (exit 2), so that a typo costs a fraction
of a second rather than the seconds of importing torch and diffusers, or a run's worth of work. The
Python API's errors name its own fields (`cross_replace_steps`); `in_flag_terms` says them as the
flags that set them (`--cross-replace-steps`). Nothing here imports torch.
"""
from __future__ import annotations

import math
import os
import re
import tempfile
from importlib.util import find_spec
from pathlib import Path

from ..defaults import DEFAULT_GUIDANCE, INVERSION_METHODS, MAX_GUIDANCE, NETWORK_METRICS, SD3_GUIDANCE
from ..errors import OptionError, P2PError
from ..inversion.options import NullTextOptions
from .edit_flags import FIELD_FLAGS
from .naming import given_name
from .sweep_grid import SweepGrid, sweep_grid

# The API's names of what a flag sets; a field that a flag may not have set (a prompt from a
# captions file) is left out, so that its error is never blamed on a flag.
FLAGS = {
    "num_steps": "--steps", "guidance_scale": "--guidance", "num_inner_steps": "--inner-steps",
    "learning_rate": "--learning-rate", "early_stop_epsilon": "--early-stop", "device": "--device",
    "compile": "--compile", "batch_size": "--batch-size", **FIELD_FLAGS,
}
DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")
UI_NEEDS_GRADIO = 'p2p-real ui needs gradio, which the ui extra installs: pip install "p2p-real[ui]"'


def in_flag_terms(error: P2PError) -> str:
    """The message of `error`, with an OptionError's field named by the flag that set it."""
    if not isinstance(error, OptionError) or error.field not in FLAGS:
        return str(error)
    flag = FLAGS[error.field]
    if error.field == "cross_replace_steps" and error.word not in (None, "default_"):
        flag = f"--word-steps {error.word}"
    elif error.word is not None and error.word != "default_":
        flag = f"{flag} {error.word}"
    return f"{flag}: {error.problem}"


def check_flags(flags, needs_gradio: bool = False) -> None:
    """The flags every verb shares, on the parsed command line (runs/flags.py's Flags): paths, numbers,
    texts, the device. Raises P2PError (or OptionError) for the first bad one. A verb's own flags are
    checked as its request is built, and the output folder last, the one check that touches the disk."""
    if needs_gradio:
        check_ui_installed()
    for path in flags.inputs if flags.has("inputs") else [flags.source]:
        if not Path(path).exists():
            raise P2PError(f"{path}: no such file or folder")
    if flags.has("mask") and flags.mask is not None and not Path(flags.mask).is_file():
        raise P2PError(f"--mask {flags.mask}: no such file; give a PNG or JPEG, white where the edit may change "
                       f"the photo")
    if flags.model_config is not None and not (Path(flags.model_config) / "model_index.json").is_file():
        raise P2PError(f"--model-config {flags.model_config}: no model_index.json there; give a diffusers folder of "
                       f"configs, or leave it out for SD 1.5's, SD 2.1's or SDXL base's")
    if flags.has("port") and not 1 <= flags.port <= 65535:
        raise P2PError(f"--port: expected a port number from 1 to 65535, got {flags.port}")
    for flag in ("steps", "gpus"):
        if flags.has(flag) and getattr(flags, flag) is not None and getattr(flags, flag) < 1:
            raise P2PError(f"--{flag}: must be at least 1, got {getattr(flags, flag)}")
    for flag in ("prompt", "target", "name"):
        if flags.has(flag) and getattr(flags, flag) is not None and not getattr(flags, flag).strip():
            raise P2PError(f"--{flag}: empty; give it some text, or leave the flag out")
    if flags.has("name") and flags.name:
        given_name(flags.name)  # a path is refused now, not after the photo was inverted
    gpus = flags.gpus if flags.has("gpus") else 1
    if gpus > 1 and "RANK" in os.environ:
        raise P2PError("--gpus: this command already runs under a launcher (RANK is set); leave --gpus out")
    if gpus > 1 and flags.device is not None:
        raise P2PError(f"--gpus with --device {flags.device}: each process takes its own GPU; leave --device out")
    if flags.device is not None and not DEVICE.fullmatch(flags.device):
        raise P2PError(f"--device {flags.device!r}: not a device; use cpu, cuda, cuda:N (N a GPU's number) or mps")
    if flags.has("guidance") and flags.guidance is not None and not math.isfinite(flags.guidance):
        raise P2PError(f"--guidance: expected a finite number, got {flags.guidance}")
    if flags.has("guidance") and flags.guidance is not None and not 0 < flags.guidance <= MAX_GUIDANCE:
        raise P2PError(f"--guidance: expected a scale above 0 and at most {MAX_GUIDANCE:g} (default "
                       f"{DEFAULT_GUIDANCE:g}, SD3's {SD3_GUIDANCE:g}; useful: 1 to 20), got {flags.guidance}")


def lora_options(values: list[str] | None) -> tuple[tuple[str, float], ...]:
    """`--lora FILE[:SCALE]`, repeatable, as (file, scale) pairs: each file there, each scale a finite
    number (default 1). A path that is itself a file is taken whole, colons and all."""
    loras = []
    for value in values or []:
        path, scale = value, "1"
        if not Path(value).is_file() and ":" in value:
            path, scale = value.rsplit(":", 1)
        try:
            number = float(scale)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise P2PError(f"--lora {value}: the scale {scale!r} is not a finite number; give FILE or FILE:SCALE, "
                           f"e.g. style.safetensors:0.8")
        if not Path(path).is_file():
            raise P2PError(f"--lora {path}: no such file; give a LoRA's .safetensors file")
        loras.append((path, number))
    return tuple(loras)


def check_ui_installed() -> None:
    """gradio, which only the ui verb needs, is an optional extra: found without importing it."""
    if find_spec("gradio") is None:
        raise P2PError(UI_NEEDS_GRADIO)


def check_sweep(gpus: int, cross: str, self_replace: str, thresholds: str | None, blend: list[str] | None,
                tolerance: float) -> SweepGrid:
    """`p2p-real sweep`'s own flags: one GPU, the grid, the tolerance; the grid."""
    if gpus > 1:
        raise P2PError("--gpus: a sweep runs on one GPU (its settings share one sampling pass); leave --gpus out")
    grid = sweep_grid(cross, self_replace, thresholds, blend)
    if not math.isfinite(tolerance) or not 0 <= tolerance <= 1:
        raise P2PError(f"--edit-tolerance: expected a fraction of the grid's range of edit scores in [0, 1], "
                       f"got {tolerance}")
    return grid


def check_output(folder: Path) -> None:
    """That results can be written into `folder`: it is made and written to, and what the check
    made is removed again, so that a run stopped by a later check leaves nothing behind."""
    if folder.exists() and not folder.is_dir():
        raise P2PError(f"--output {folder}: a file, not a folder; give a folder for the results")
    made = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise P2PError(f"--output {folder}: cannot write there ({error.strerror or error}); "
                       f"give another folder") from None
    finally:
        for path in made:
            try:
                path.rmdir()
            except OSError:
                break


def null_text_options(inner_steps: int, learning_rate: float, early_stop: float) -> NullTextOptions:
    return NullTextOptions(num_inner_steps=inner_steps, learning_rate=learning_rate, early_stop_epsilon=early_stop)


def method_names(methods: str) -> list[str]:
    """`--methods ddim,direct` as a list of names, each one known."""
    chosen = [method.strip() for method in methods.split(",") if method.strip()]
    unknown = [method for method in chosen if method not in INVERSION_METHODS]
    if unknown or not chosen:
        raise P2PError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; "
                       f"choose from {', '.join(INVERSION_METHODS)}")
    return chosen


def metric_names(metrics: str) -> set[str]:
    """`--metrics lpips,clip` (or none) as a set of names, each one known."""
    names = set() if metrics == "none" else set(filter(None, metrics.split(",")))
    if names - set(NETWORK_METRICS):
        unknown = ", ".join(sorted(names - set(NETWORK_METRICS)))
        raise P2PError(f"--metrics: unknown {unknown}; choose from {', '.join(NETWORK_METRICS)} or none")
    return names
