"""The command line checked before torch is imported: every path and flag, and the output folder.

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

from ..defaults import INVERSION_METHODS, NETWORK_METRICS
from ..editing.options import EditOptions
from ..errors import OptionError, P2PError
from ..inversion.options import NullTextOptions
from .batch_size import batch_size_option
from .naming import given_name
from .sweep_grid import sweep_grid

# The API's names of what a flag sets; a field that a flag may not have set (a prompt from a
# captions file) is left out, so that its error is never blamed on a flag.
FLAGS = {
    "num_steps": "--steps", "guidance_scale": "--guidance", "num_inner_steps": "--inner-steps",
    "learning_rate": "--learning-rate", "early_stop_epsilon": "--early-stop", "device": "--device", "compile": "--compile", "kind": "--kind",
    "cross_replace_steps": "--cross-replace-steps", "self_replace_steps": "--self-replace-steps",
    "reweights": "--reweight", "blend_words": "--blend", "batch_size": "--batch-size",
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


def check_command_line(options: dict) -> None:
    """Every path and flag of a parsed command line (argparse's dict); the output folder last, as
    it is the one check that touches the disk. Raises P2PError (or OptionError) for the first bad one."""
    if options.get("command") == "run_ui":
        check_ui_installed()
    for path in options["inputs"] if "inputs" in options else [options["source"]]:
        if not Path(path).exists():
            raise P2PError(f"{path}: no such file or folder")
    if options.get("mask") is not None and not Path(options["mask"]).is_file():
        raise P2PError(f"--mask {options['mask']}: no such file; give a PNG or JPEG, white where the edit may change the photo")
    if "port" in options and not 1 <= options["port"] <= 65535:
        raise P2PError(f"--port: expected a port number from 1 to 65535, got {options['port']}")
    for flag in ("steps", "gpus"):
        if options.get(flag) is not None and options[flag] < 1:
            raise P2PError(f"--{flag.replace('_', '-')}: must be at least 1, got {options[flag]}")
    if options.get("command") in ("run_invert", "run_edit"):  # photos per batch, or auto (a sweep's counts settings)
        batch_size_option(options["batch_size"])
    elif options.get("batch_size") is not None and options["batch_size"] < 1:
        raise P2PError(f"--batch-size: must be at least 1 setting per sampling pass, got {options['batch_size']}")
    for flag in ("prompt", "target", "name"):
        if options.get(flag) is not None and not options[flag].strip():
            raise P2PError(f"--{flag}: empty; give it some text, or leave the flag out")
    if options.get("name"):
        given_name(options["name"])  # a path is refused now, not after the photo was inverted
    if options.get("gpus", 1) > 1 and "RANK" in os.environ:
        raise P2PError("--gpus: this command already runs under a launcher (RANK is set); leave --gpus out")
    if options.get("gpus", 1) > 1 and options["device"] is not None:
        raise P2PError(f"--gpus with --device {options['device']}: each process takes its own GPU; leave --device out")
    if options["device"] is not None and not DEVICE.fullmatch(options["device"]):
        raise P2PError(f"--device {options['device']!r}: not a device; use cpu, cuda, cuda:N (N a GPU's number) or mps")
    if "guidance" in options and not math.isfinite(options["guidance"]):
        raise P2PError(f"--guidance: expected a finite number, got {options['guidance']}")
    if "inner_steps" in options:
        null_text_options(options["inner_steps"], options["learning_rate"], options["early_stop"])
    if "word_steps" in options:
        edit_options(options["kind"], options["cross_replace_steps"], options["self_replace_steps"], options["blend"],
                     options["reweight"], options["word_steps"])
    if "methods" in options:
        method_names(options["methods"])
    if options.get("metrics") is not None:  # None: the verb's own default
        metric_names(options["metrics"])
    if "cross_grid" in options:
        check_sweep(options)
    check_output(Path(options["output"]))


def check_ui_installed() -> None:
    """gradio, which only the ui verb needs, is an optional extra: found without importing it."""
    if find_spec("gradio") is None:
        raise P2PError(UI_NEEDS_GRADIO)


def check_sweep(options: dict) -> None:
    """`p2p-real sweep`'s own flags: the grid, the edit that every setting shares, the tolerance."""
    if options["gpus"] > 1:
        raise P2PError("--gpus: a sweep runs on one GPU (its settings share one sampling pass); leave --gpus out")
    sweep_grid(options["cross_grid"], options["self_grid"], options["thresholds"], options["blend"])
    edit_options(options["kind"], EditOptions.cross_replace_steps, EditOptions.self_replace_steps, options["blend"],
                 options["reweight"], [])
    tolerance = options["edit_tolerance"]
    if not math.isfinite(tolerance) or not 0 <= tolerance <= 1:
        raise P2PError(f"--edit-tolerance: expected a fraction of the grid's range of edit scores in [0, 1], got {tolerance}")


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
        raise P2PError(f"--output {folder}: cannot write there ({error.strerror or error}); give another folder") from None
    finally:
        for path in made:
            try:
                path.rmdir()
            except OSError:
                break


def null_text_options(inner_steps: int, learning_rate: float, early_stop: float) -> NullTextOptions:
    return NullTextOptions(num_inner_steps=inner_steps, learning_rate=learning_rate, early_stop_epsilon=early_stop)


def edit_options(kind: str, cross_replace_steps: float, self_replace_steps: float, blend: list[str] | None,
                 reweight: list[str], word_steps: list[str]) -> EditOptions:
    """The edit flags as EditOptions (whose errors name fields; in_flag_terms names their flags)."""
    windows = {"default_": cross_replace_steps, **parse_word_windows(word_steps)} if word_steps else cross_replace_steps
    return EditOptions(kind=kind, cross_replace_steps=windows, self_replace_steps=self_replace_steps,
                       reweights=parse_reweights(reweight), blend_words=tuple(blend) if blend else None)


def parse_reweights(values: list[str]) -> dict[str, float]:
    """`--reweight WORD=FACTOR` options as {word: factor}."""
    weights = {}
    for value in values:
        word, _, factor = value.rpartition("=")
        try:
            weights[word] = float(factor)
        except ValueError:
            raise P2PError(f"--reweight {value!r}: expected WORD=FACTOR, e.g. fluffy=2") from None
        if not word.strip():
            raise P2PError(f"--reweight {value!r}: expected WORD=FACTOR, e.g. fluffy=2")
    return weights


def parse_word_windows(values: list[str]) -> dict[str, tuple[float, float]]:
    """`--word-steps WORD=START,END` options as {word: (start, end)}."""
    windows = {}
    for value in values:
        word, _, bounds = value.rpartition("=")
        try:
            start, end = (float(part) for part in bounds.split(","))
        except ValueError:
            raise P2PError(f"--word-steps {value!r}: expected WORD=START,END, e.g. dog=0,0.8") from None
        if not word.strip():
            raise P2PError(f"--word-steps {value!r}: expected WORD=START,END, e.g. dog=0,0.8")
        windows[word] = (start, end)
    return windows


def method_names(methods: str) -> list[str]:
    """`--methods ddim,direct` as a list of names, each one known."""
    chosen = [method.strip() for method in methods.split(",") if method.strip()]
    unknown = [method for method in chosen if method not in INVERSION_METHODS]
    if unknown or not chosen:
        raise P2PError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(INVERSION_METHODS)}")
    return chosen


def metric_names(metrics: str) -> set[str]:
    """`--metrics lpips,clip` (or none) as a set of names, each one known."""
    names = set() if metrics == "none" else set(filter(None, metrics.split(",")))
    if names - set(NETWORK_METRICS):
        raise P2PError(f"--metrics: unknown {', '.join(sorted(names - set(NETWORK_METRICS)))}; choose from {', '.join(NETWORK_METRICS)} or none")
    return names
