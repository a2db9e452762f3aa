"""`p2p-real sweep`: one photo (an artifact folder, or a photo inverted first), one target, a grid of
edit strengths scored and one chosen (runs/sweep.py); a setting that failed is named (exit 1). An
OUTPUT that holds the sweep of another target or artifact is refused: one sweep never replaces another's."""
from __future__ import annotations

import json
from pathlib import Path

from ..artifacts import load_inversion
from ..editing.options import EditOptions
from ..errors import P2PError
from ..eval.scores import MetricModels
from ..models import Model
from .edit_command import check_edit_source, recorded_model
from .edits import invert_sources, source_names
from .edits_file import EditJob
from .naming import file_system_problem, inside
from .outcome import Outcome
from .requests import SweepRequest
from .sweep import SweepScoring, describe, sweep, write_sweep
from .sweep_reading import edit_reader


def run_sweep(request: SweepRequest) -> Outcome:
    source, output, target = Path(request.source), Path(request.output), request.target
    if not target:
        raise P2PError(f"{source}: give --target \"the edited caption\"")
    model_choice = recorded_model(request.model, check_edit_source(source, target, request.prompt))
    check_sweep_output(output, source, target)
    reader = edit_reader(model_choice.name_or_path, target)
    names = sweep_metric_names(request.metrics, reader is not None)
    model = model_choice.load()
    # Before the inversion, so that metric weights missing offline cost no minutes; LPIPS on PIE-Bench's SqueezeNet.
    metric_models = MetricModels.load(names, request.metric_weights, model.device, "squeeze", request.clip_model)
    artifact = sweep_artifact(model, source, request, output)
    inversion = load_inversion(artifact, model)
    scoring = SweepScoring(metric_models, reader, request.edit_tolerance)
    result = sweep(model, inversion, target, request.base, request.grid, scoring, request.settings_per_pass,
                   request.progress)
    try:
        best_yaml = write_sweep(output, model, inversion, EditJob(artifact, target, request.base), result, scoring)
    except OSError as error:  # a full disk, a folder made read-only meanwhile
        raise P2PError(file_system_problem(error, output)) from None
    files = "grid.png, plot.png, sweep.json" + (", best.yaml" if best_yaml else "")
    return Outcome(
        code=1 if result.failed else 0,
        lines=[*describe(result, best_yaml, output, model.name),
               f"swept {len(result.settings)} setting(s) of {artifact} in {result.seconds:.1f} s "
               f"({result.passes} sampling pass(es)), {len(result.failed)} failed -> {output} ({files})"],
        problems=[f"failed: {setting.label}: {message}" for setting, message in result.failed],
    )


def sweep_metric_names(metrics: frozenset[str] | None, reads_edits: bool) -> set[str]:
    """The metric networks a sweep loads; the edit score needs CLIP, except where a reader scores
    the edits (the shapes model's, runs/sweep_reading.py)."""
    names = set(metrics) if metrics is not None else {"lpips"} if reads_edits else {"lpips", "clip"}
    if not reads_edits and "clip" not in names:
        raise P2PError("--metrics: the edit score is the target's CLIP score; keep clip in --metrics "
                       "(only --model shapes scores its edits without it)")
    return names


def sweep_artifact(model: Model, source: Path, request: SweepRequest, output: Path) -> Path:
    """The artifact folder to sweep: `source` itself, or the photo's, inverted first into OUTPUT/<photo>/
    as `p2p-real edit` does (a kept inversion of the same work is reused)."""
    if source.is_dir():
        return source
    job = EditJob(source, "", EditOptions(), request.prompt)
    names = source_names([job])
    failed = invert_sources(model, [job], output, names, request.steps, 1, request.force, request.progress)
    if failed:
        raise P2PError(failed[source])
    return inside(output, names[source])


def check_sweep_output(output: Path, source: Path, target: str) -> None:
    """That OUTPUT holds no sweep of another target or artifact, whose best.yaml, sweep.json and edits/
    this one would replace; the same sweep again is redone in place."""
    record_path = output / "sweep.json"
    try:
        earlier = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as error:
        raise P2PError(f"{record_path}: unreadable ({error}); a sweep would replace it: "
                       f"give another --output") from None
    earlier = earlier if isinstance(earlier, dict) else {}
    artifact = source if source.is_dir() else inside(output, source_names([EditJob(source, target)])[source])
    if earlier.get("prompt") != target or earlier.get("artifact") != str(artifact.resolve()):
        raise P2PError(f"--output {output}: holds the sweep of {earlier.get('artifact')} to {earlier.get('prompt')!r}, "
                       f"whose best.yaml, sweep.json and edits/ this one would replace; "
                       f"give each sweep its own --output")
