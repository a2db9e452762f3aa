"""The page's sweep: `p2p-real sweep` of the current inversion to the edit form's target (with its
kind, blend words and re-weights), run through the runs layer's own sweep and writer (runs/sweep.py),
so that OUTPUT/<photo>/sweeps/<target>-<hash>/ holds exactly the files the command writes; and each
setting of a sweep, read back from its sweep.json, as the values the edit form takes ("use this
setting"). Nothing here knows Gradio: the tests call these directly.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import load_inversion
from ..errors import P2PError
from ..runs.edit_flags import entry_fields
from ..runs.edits_file import EditJob
from ..runs.naming import edit_folder_name, inside
from ..runs.sweep import SweepScoring, describe, sweep, write_sweep
from ..runs.sweep_command import check_sweep_output, sweep_metric_names
from ..runs.sweep_figures import GridLayout
from ..runs.sweep_grid import DEFAULT_CROSS, DEFAULT_SELF, Setting, sweep_grid
from ..runs.sweep_reading import edit_reader
from .edit_form import EditForm

SWEEPS_FOLDER = "sweeps"  # in OUTPUT/<photo>/, beside the photo's edits


@dataclass(frozen=True)
class SweepForm:
    cross: str = DEFAULT_CROSS  # as --cross: cross-replace steps to try
    self_replace: str = DEFAULT_SELF  # as --self
    thresholds: str = ""  # as --thresholds, with LocalBlend words; empty: PIE-Bench's 0.3 only


@dataclass(frozen=True)
class SettingChoice:
    """One setting of a sweep, as the page lists it and as the edit form takes it."""

    label: str  # "cross 0.4, self 0.6: PSNR 31.2 dB, edit 1.00 (chosen)"
    cross_replace_steps: float
    self_replace_steps: float
    blend_threshold: float | None  # None: the sweep had no LocalBlend
    in_grid: bool = True  # False: PIE-Bench's setting, run beside a grid that lacks it (not in grid.png)


@dataclass(frozen=True)
class SweepView:
    message: str
    failed: bool = False
    folder: str | None = None  # the sweep's OUTPUT, as `p2p-real sweep --output` names it
    grid: str | None = None  # grid.png
    plot: str | None = None  # plot.png: fidelity against the edit score
    settings: tuple[SettingChoice, ...] = ()
    chosen: int | None = None  # the index in `settings` of the sweep's choice


def sweep_folder(artifact: Path, form: EditForm) -> Path:
    """OUTPUT/<photo>/sweeps/<target>-<hash of the target and the options every setting shares>."""
    return inside(artifact, SWEEPS_FOLDER, edit_folder_name(form.target.strip(), entry_fields(form.options())))


def run_page_sweep(workbench, artifact: str | None, form: EditForm, grid_form: SweepForm) -> SweepView:
    """The sweep, written as the command writes it, then read back from its sweep.json."""
    if not artifact:
        raise P2PError("no inversion to sweep: invert a photo, or pick a kept inversion")
    target = form.target.strip()
    if not target:
        raise P2PError("no target: type the edited caption, then sweep")
    base = form.options()
    grid = sweep_grid(grid_form.cross, grid_form.self_replace, grid_form.thresholds.strip() or None,
                      base.blend_words)
    source, output = Path(artifact), sweep_folder(Path(artifact), form)
    workbench.check_model(source)
    check_sweep_output(output, source, target)
    reader = edit_reader(workbench.model.name, target)
    names = sweep_metric_names(None, reader is not None)
    with workbench.model_lock:
        scoring = SweepScoring(workbench.metric_models(names), reader)
        inversion = load_inversion(source, workbench.model)
        result = sweep(workbench.model, inversion, target, base, grid, scoring, progress=True)
        best_yaml = write_sweep(output, workbench.model, inversion, EditJob(source, target, base), result, scoring)
    lines = describe(result, best_yaml, output, workbench.model.name)[:1]
    failed = f", {len(result.failed)} failed" if result.failed else ""
    return sweep_view(output, f"swept {len(result.settings)} setting(s) in {result.seconds:.1f} s{failed}: "
                              f"{lines[0]} -> {output}")


def sweep_view(output: Path, message: str) -> SweepView:
    """A written sweep as the page shows it: its pictures and its settings, read from sweep.json."""
    record = json.loads((output / "sweep.json").read_text())
    settings = setting_choices(record)
    rows = record["rows"]
    chosen = rows.index(record["chosen"]) if record.get("chosen") in rows else None
    return SweepView(message, folder=str(output), grid=str(output / "grid.png"), plot=str(output / "plot.png"),
                     settings=tuple(settings), chosen=chosen)


def setting_choices(record: dict) -> list[SettingChoice]:
    """sweep.json's rows as settings to pick, each labelled with its scores, the choice and PIE-Bench's named."""
    choices = []
    for row in record["rows"]:
        threshold = row.get("blend_threshold")
        name = f"cross {row['cross_replace_steps']:g}, self {row['self_replace_steps']:g}" + (
            "" if threshold is None else f", threshold {threshold:g}")
        psnr, score = row.get("psnr_bg"), row.get("edit_score")
        scores = ("failed" if psnr is None or score is None or not math.isfinite(psnr)
                  else f"PSNR {psnr:.1f} dB, edit {score:.2f}")
        notes = [note for note, is_it in (("chosen", row == record.get("chosen")),
                                          ("PIE-Bench's", row == record.get("pie_bench")),
                                          ("Pareto front", row.get("pareto"))) if is_it]
        noted = f" ({', '.join(notes)})" if notes else ""
        choices.append(SettingChoice(f"{name}: {scores}{noted}", row["cross_replace_steps"], row["self_replace_steps"],
                                     threshold, row.get("in_grid", True)))
    return choices


def clicked_setting(choices: list[SettingChoice], x: int, y: int) -> SettingChoice | None:
    """The setting whose cell of grid.png holds pixel (x, y); None off the cells."""
    settings = [Setting(c.cross_replace_steps, c.self_replace_steps, c.blend_threshold, c.in_grid) for c in choices]
    cell = GridLayout.of(settings).setting_at(x, y)
    return next((choice for choice, setting in zip(choices, settings) if setting.in_grid
                 and (setting.cross_replace_steps, setting.self_replace_steps, setting.blend_threshold) == cell), None)


def form_values(choice: SettingChoice, threshold_now: float) -> tuple[float, float, float]:
    """The edit form's cross-replace, self-replace and LocalBlend threshold for `choice`; a sweep
    without LocalBlend leaves the threshold as it is."""
    threshold = threshold_now if choice.blend_threshold is None else choice.blend_threshold
    return choice.cross_replace_steps, choice.self_replace_steps, threshold
