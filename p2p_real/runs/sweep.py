"""`p2p-real sweep`: find an edit's strength instead of guessing it. One inversion, one target, a
grid of cross- and self-replace steps (and LocalBlend thresholds), sampled `settings_per_pass` to a
pass of the multi-target `edit()`, each edit scored for fidelity and for the edit
(eval/sweep_scores.py), the Pareto front found and one setting chosen (eval/pareto.py).

Written into OUTPUT (a later sweep into the same folder replaces them):

    grid.png        the edits, rows cross-replace steps, columns self-replace steps, scores under each
    plot.png        fidelity against edit score: the front, the chosen setting and PIE-Bench's
    sweep.json      every setting and its scores, the front, the rule, the choice and its edits entry
    best.yaml       the chosen setting as an edits file: `p2p-real edit OUTPUT/best.yaml --output edits/`
    edits/<setting>.png  each edit

Every PNG carries its settings in a `parameters` chunk and a JSON sidecar, as `p2p-real edit` writes.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..artifacts import Inversion, tensors_sha256
from ..editing.edit import EditResult, edit
from ..editing.options import EditOptions
from ..eval.pareto import DEFAULT_TOLERANCE, choose, pareto_front
from ..eval.scores import MetricModels
from ..eval.sweep_scores import EditReader, common_mask, sweep_scores
from ..images import save_png, to_pil, write_atomic, write_json_atomic
from ..models import Model
from .edits_file import EditJob, entry_for
from .memory import Failed, split_on_out_of_memory
from .records import edit_record
from .sweep_figures import grid_picture, scatter_plot
from .sweep_grid import DEFAULT_SETTINGS_PER_PASS, Setting, SweepGrid

OUT_OF_MEMORY_ADVICE = "try a smaller --settings-per-pass, or --dtype float16 if you chose float32"

# The edit axis, in the plot's words and in sweep.json's, where no EditReader reads the edits.
CLIP_AXIS = ("CLIP score of the target", "clip: CLIP score of the edit against the target caption, 0-100")


@dataclass(frozen=True)
class SweepScoring:
    """How a sweep scores and chooses: the metric networks, the edits' reader if any (else CLIP
    scores the edit), and how far below the best edit score the chosen setting may be."""

    metric_models: MetricModels
    reader: EditReader | None = None
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def axis(self) -> tuple[str, str]:
        return CLIP_AXIS if self.reader is None else self.reader.axis


@dataclass
class Sweep:
    """What a sweep found: per setting its edit (None if it failed) and its row of scores."""

    settings: list[Setting]
    edited: list[torch.Tensor | None]  # (H, W, 3) uint8
    rows: list[dict]
    chosen: int | None
    mask_fraction: float | None  # of the picture, the region fidelity leaves out; None: none left out
    passes: int
    seconds: float
    failed: list[tuple[Setting, str]] = field(default_factory=list)


def sweep(model: Model, inversion: Inversion, target: str, base: EditOptions, grid: SweepGrid, scoring: SweepScoring,
          settings_per_pass: int = DEFAULT_SETTINGS_PER_PASS, progress: bool = False) -> Sweep:
    """Every setting of `grid` (with `base`'s kind, blend words and re-weights), scored; the front and the choice."""
    started = time.perf_counter()
    settings = grid.settings()
    chunks = [settings[start : start + settings_per_pass] for start in range(0, len(settings), settings_per_pass)]
    outcomes = []
    for chunk in tqdm(chunks, desc="sweep", unit="pass", disable=not progress):
        outcomes += sample_chunk(model, inversion, target, base, chunk)
    results = [outcome for outcome in outcomes if isinstance(outcome, EditResult)]
    mask = common_mask([result.mask for result in results], tuple(inversion.noise_latents.shape[1:]))
    scores = iter(sweep_scores(results, target, scoring.metric_models, mask, scoring.reader))
    nan = dict.fromkeys(("psnr_bg", "lpips_bg", "ssim_bg", "structure", "clip", "clip_edited", "edit_score"), math.nan)
    rows = [{**setting_row(setting), **(next(scores) if isinstance(outcome, EditResult) else {**nan, "error": outcome})}
            for setting, outcome in zip(settings, outcomes)]
    points = [(row["psnr_bg"], row["edit_score"]) for row in rows]
    for row, on_front in zip(rows, pareto_front(points)):
        row["pareto"] = on_front
    return Sweep(settings, [outcome.edited if isinstance(outcome, EditResult) else None for outcome in outcomes], rows,
                 choose(points, scoring.tolerance), float(mask.mean()) if mask.any() else None,
                 len(chunks), time.perf_counter() - started,
                 [(setting, outcome) for setting, outcome in zip(settings, outcomes) if isinstance(outcome, str)])


def sample_chunk(model: Model, inversion: Inversion, target: str, base: EditOptions, settings: list[Setting]) -> list:
    """The chunk's edits in one pass; when memory runs out, one by one (a setting that still does
    not fit becomes its message). A bad word is a P2PError for every setting alike, and stops the sweep."""
    def work(part: list[Setting]) -> list[EditResult]:
        return edit(model, inversion, [target] * len(part), [setting.options(base) for setting in part])

    outcomes = split_on_out_of_memory(work, settings, model, OUT_OF_MEMORY_ADVICE, one_by_one=True)
    return [outcome.message if isinstance(outcome, Failed) else outcome for outcome in outcomes]


def setting_row(setting: Setting) -> dict:
    return {"cross_replace_steps": setting.cross_replace_steps, "self_replace_steps": setting.self_replace_steps,
            "blend_threshold": setting.blend_threshold, "in_grid": setting.in_grid,
            "image": f"edits/{setting.file_name}"}


def best_job(swept: EditJob, result: Sweep) -> EditJob | None:
    """The chosen setting as the edit to run; None when nothing could be scored."""
    if result.chosen is None:
        return None
    return replace(swept, options=result.settings[result.chosen].options(swept.options))


def write_sweep(output: Path, model: Model, inversion: Inversion, swept: EditJob, result: Sweep,
                scoring: SweepScoring) -> str | None:
    """Every file of the sweep into `output`; the chosen setting's edits file (YAML text), if any.
    `swept`: the artifact, the target and the options every setting shares."""
    import yaml

    content = tensors_sha256(inversion)
    best = best_job(swept, result)
    best_yaml = None if best is None else yaml.safe_dump({"edits": [entry_for(best)]}, sort_keys=False)
    (output / "edits").mkdir(parents=True, exist_ok=True)
    for stale in [*(output / "edits").glob("cross-*.png"), *(output / "edits").glob("cross-*.json")]:
        stale.unlink(missing_ok=True)  # an earlier sweep's settings that this one may not have
    for setting, picture, row in zip(result.settings, result.edited, result.rows):
        if picture is not None:
            settings = edit_record(swept.target, setting.options(swept.options), inversion, model, content)
            save_png(to_pil(picture), output / row["image"], json_safe({**settings, "scores": scores_of(row)}))
    record = json_safe(sweep_record(model, inversion, swept, result, scoring, content, best_yaml))
    picture_settings = {key: record[key]
                        for key in ("prompt", "source_prompt", "model", "steps", "artifact", "grid", "chosen")}
    save_png(grid_picture(result.settings, result.edited, result.rows, result.chosen), output / "grid.png",
             picture_settings)
    title = f"{inversion.prompt!r} -> {swept.target!r}"
    save_png(scatter_plot(result.settings, result.rows, result.chosen, title, scoring.axis[0]), output / "plot.png",
             picture_settings)
    if best_yaml is not None:
        write_atomic(output / "best.yaml", best_yaml.encode())
    else:  # an earlier sweep's choice must not pass for this one's
        (output / "best.yaml").unlink(missing_ok=True)
    write_json_atomic(output / "sweep.json", record)
    return best_yaml


def sweep_record(model: Model, inversion: Inversion, swept: EditJob, result: Sweep, scoring: SweepScoring, content: str,
                 best_yaml: str | None) -> dict:
    """sweep.json: what was swept, how it was scored and chosen, and every row."""
    base, tolerance = swept.options, scoring.tolerance
    crosses = sorted({s.cross_replace_steps for s in result.settings if s.in_grid})
    selves = sorted({s.self_replace_steps for s in result.settings if s.in_grid})
    thresholds = list(dict.fromkeys(s.blend_threshold for s in result.settings if s.in_grid))
    pie_bench = next(row for setting, row in zip(result.settings, result.rows) if setting.is_pie_bench)
    region = ("the whole picture (no LocalBlend, or every mask covered all of it)" if result.mask_fraction is None else
              f"outside the region every setting's LocalBlend mask covers ({result.mask_fraction:.1%} of the picture)")
    return {
        "prompt": swept.target, "source_prompt": inversion.prompt, "artifact": str(swept.source.resolve()),
        "model": model.name,
        "model_fingerprint": model.fingerprint, "inversion_sha256": content, "steps": inversion.num_steps,
        "guidance": inversion.guidance_scale, "method": inversion.method,
        "kind": base.kind, "blend_words": base.blend_words, "reweights": base.reweights,
        "grid": {"cross_replace_steps": crosses, "self_replace_steps": selves, "blend_thresholds": thresholds},
        "fidelity": f"psnr_bg: PSNR (dB) of the edit against the photo, {region}; lpips_bg and ssim_bg likewise",
        "edit_score": f"edit_score = {scoring.axis[1]}",
        "rule": (f"of the settings whose edit score is within {tolerance:g} of the grid's range of edit scores "
                 "below the best, the one with the highest psnr_bg (ties: higher edit score); "
                 "always on the Pareto front"),
        "edit_tolerance": tolerance, "mask_fraction": result.mask_fraction, "passes": result.passes,
        "seconds": round(result.seconds, 2),
        "chosen": None if result.chosen is None else result.rows[result.chosen], "pie_bench": pie_bench,
        "edits_entry": best_yaml, "rows": result.rows,
    }


def scores_of(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in ("image", "in_grid")}


def json_safe(value):
    """NaN and infinite floats as null, so that sweep.json is JSON any reader takes."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def describe(result: Sweep, best_yaml: str | None, output: Path, model_name: str) -> list[str]:
    """The lines a user reads: the choice against PIE-Bench's setting, and the edits entry to paste."""
    if result.chosen is None:
        return ["no setting could be scored"]
    pie_bench = next(index for index, setting in enumerate(result.settings) if setting.is_pie_bench)

    def scores(index: int) -> str:
        row = result.rows[index]
        return f"background PSNR {row['psnr_bg']:.2f} dB, edit score {row['edit_score']:.3g}"

    return [f"chosen: {result.settings[result.chosen].label} ({scores(result.chosen)}); "
            f"PIE-Bench's {result.settings[pie_bench].label}: {scores(pie_bench)}",
            f"as an edits file entry (run it: p2p-real edit {output / 'best.yaml'} --model {model_name} "
            f"--output EDITS):",
            *best_yaml.rstrip().splitlines()]
