"""The parsed command line read into its verb's request (runs/requests.py), each flag by its name
and checked once, before torch is imported: a typo costs a fraction of a second. A flag the parser
has and the request never reads is a bug, said at once rather than ignored.
"""
from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from ..defaults import SMALL_MODEL_STEPS
from ..errors import P2PError
from .batch_size import batch_size_option
from .checks import (
    check_flags,
    check_output,
    check_sweep,
    lora_options,
    method_names,
    metric_names,
    null_text_options,
)
from .edit_flags import edit_options, verb_flags
from .requests import (
    BenchEditRequest,
    BenchReconstructRequest,
    EditRequest,
    InvertRequest,
    ModelChoice,
    SweepRequest,
    UiRequest,
)

NOT_FLAGS = ("verb", "bench", "build")  # the parser's own: which verb, and which builder reads it


class Flags:
    """argparse's namespace, read by name: a name the parser lacks is an AttributeError, and what
    was read is kept, so that a flag no request reads is found."""

    def __init__(self, namespace: Namespace):
        self._values = dict(vars(namespace))
        self._read: set[str] = set()

    def __getattr__(self, name: str):
        values = self.__dict__["_values"]
        if name not in values:
            raise AttributeError(f"the command line has no flag whose dest is {name!r}")
        self.__dict__["_read"].add(name)
        return values[name]

    def has(self, name: str) -> bool:
        return name in self._values

    def unread(self) -> set[str]:
        return set(self._values) - self._read - set(NOT_FLAGS)


def build_request(namespace: Namespace):
    """The request of the verb the command line names, checked; P2PError for bad input."""
    flags = Flags(namespace)
    request = namespace.build(flags)
    if flags.unread():
        raise AssertionError(f"flags no request reads: {', '.join(sorted(flags.unread()))}")
    check_output(Path(request.output))  # last: the one check that touches the disk
    return request


def model_choice(flags: Flags) -> ModelChoice:
    return ModelChoice(name_or_path=flags.model, device=flags.device, dtype=flags.dtype, cuda_graphs=flags.cuda_graphs,
                       compile=flags.compile, loras=lora_options(flags.lora), prediction_type=flags.prediction_type,
                       model_config=flags.model_config)


def steps(flags: Flags) -> int:
    """--steps, or the default: None, the model family's (the papers' 50; SD3's 28), but seconds-fast
    runs on the small built-ins."""
    return SMALL_MODEL_STEPS.get(flags.model) if flags.steps is None else flags.steps


def verb_edit_options(flags: Flags, verb: str):
    return edit_options({row.dest: getattr(flags, row.dest) for row in verb_flags(verb)})


def invert_request(flags: Flags) -> InvertRequest:
    check_flags(flags)
    return InvertRequest(
        inputs=tuple(flags.inputs), output=flags.output, model=model_choice(flags), prompt=flags.prompt,
        method=flags.method, steps=steps(flags), guidance=flags.guidance,
        null_text=null_text_options(flags.inner_steps, flags.learning_rate, flags.early_stop),
        batch_size=batch_size_option(flags.batch_size), force=flags.force, progress=flags.progress, gpus=flags.gpus)


def edit_request(flags: Flags) -> EditRequest:
    check_flags(flags)
    return EditRequest(
        source=flags.source, output=flags.output, model=model_choice(flags), target=flags.target, name=flags.name,
        prompt=flags.prompt, options=verb_edit_options(flags, "edit"), mask=flags.mask, steps=steps(flags),
        batch_size=batch_size_option(flags.batch_size), maps=flags.maps, force=flags.force, progress=flags.progress,
        gpus=flags.gpus)


def sweep_request(flags: Flags) -> SweepRequest:
    check_flags(flags)
    if flags.settings_per_pass < 1:
        raise P2PError(f"--settings-per-pass: must be at least 1 setting per sampling pass, "
                       f"got {flags.settings_per_pass}")
    grid = check_sweep(flags.gpus, flags.cross_grid, flags.self_grid, flags.thresholds, flags.blend,
                       flags.edit_tolerance)
    return SweepRequest(
        source=flags.source, output=flags.output, grid=grid, model=model_choice(flags), target=flags.target,
        prompt=flags.prompt, base=verb_edit_options(flags, "sweep"), settings_per_pass=flags.settings_per_pass,
        steps=steps(flags), metrics=None if flags.metrics is None else frozenset(metric_names(flags.metrics)),
        metric_weights=flags.metric_weights, clip_model=flags.clip_model, edit_tolerance=flags.edit_tolerance,
        force=flags.force, progress=flags.progress, gpus=flags.gpus)


def bench_reconstruct_request(flags: Flags) -> BenchReconstructRequest:
    check_flags(flags)
    return BenchReconstructRequest(
        source=flags.source, output=flags.output, model=model_choice(flags), methods=tuple(method_names(flags.methods)),
        steps=steps(flags), metrics=frozenset(metric_names(flags.metrics)), metric_weights=flags.metric_weights,
        clip_model=flags.clip_model, structure_model=flags.structure_model, progress=flags.progress, gpus=flags.gpus)


def bench_edit_request(flags: Flags) -> BenchEditRequest:
    check_flags(flags)
    return BenchEditRequest(
        source=flags.source, output=flags.output, model=model_choice(flags), method=flags.method, steps=steps(flags),
        metrics=frozenset(metric_names(flags.metrics)), metric_weights=flags.metric_weights,
        clip_model=flags.clip_model, structure_model=flags.structure_model, structure_pixels=flags.structure_pixels,
        progress=flags.progress, gpus=flags.gpus)


def ui_request(flags: Flags) -> UiRequest:
    check_flags(flags, needs_gradio=True)
    return UiRequest(inputs=tuple(flags.inputs), output=flags.output, model=model_choice(flags), method=flags.method,
                     steps=steps(flags), host=flags.host, port=flags.port, share=flags.share,
                     metric_weights=flags.metric_weights)
