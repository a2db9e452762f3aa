"""What each `p2p-real` verb does: check its input (before the model loads, where it can), run the
job, and say how it went. Each takes the command line's options as keyword arguments and returns an
`Outcome`; cli.py prints it and exits with its code. Bad input is a P2PError (exit 2). The flags
themselves were checked by checks.py, which cli.py runs before importing this module (and torch).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..artifacts import load_inversion
from ..defaults import DEFAULT_MODEL, DEFAULT_STEPS, INVERSION_METHODS
from ..editing.options import EditOptions
from ..errors import P2PError
from ..eval.pareto import DEFAULT_TOLERANCE
from ..eval.pie_bench_protocol import Protocol
from ..eval.pie_bench_table import paper_markdown, paper_table
from ..eval.scores import MetricModels
from ..eval.summary import format_table, summarize
from ..images import load_image
from ..inversion.options import NullTextOptions
from ..loading import load_model
from ..models import Model
from ..shapes.check import parse_caption
from .batch_size import AUTO, batch_size_option
from ..devices import device_name
from .bench import bench_edit, bench_reconstruct, plot_quality_against_time, write_json
from .compile_cache import is_warm, mark_warm
from .checks import UI_NEEDS_GRADIO, edit_options, method_names, metric_names, null_text_options
from .edits import MAX_TARGETS_PER_PASS, invert_sources, run_edits, source_names
from .edits_file import EDITS_FILES, EditJob, find_edits_file, read_edits_file
from .invert import invert_photos
from .masks import read_mask
from .naming import inside
from .photos import find_photos
from .pie_bench import read_bench_edits
from .ranks import Ranks
from .report import RunReport
from .sweep import describe, sweep, write_sweep
from .sweep_grid import DEFAULT_CROSS, DEFAULT_SELF, sweep_grid

# A photo named alone is decoded before the model loads, so that a bad file is bad input (exit 2)
# within a second; decoding at any size proves it readable, and a small one keeps that cheap.
EARLY_CHECK_SIZE = 64


@dataclass(frozen=True)
class ModelChoice:
    """The model options of every verb, as load_model takes them."""

    name_or_path: str | None = None  # None: DEFAULT_MODEL, or for an edit of an artifact folder its own model
    device: str | None = None
    dtype: str = "auto"
    cuda_graphs: bool = True
    compile: bool | None = None  # None: compile for a folder on a GPU once the compile cache holds this model's kernels

    def load(self, ranks: Ranks = Ranks(), photos: int = 1) -> Model:
        """The model, on this rank's device; `photos`: how many this process will invert."""
        # The command owns its process: let CUDA's allocator grow segments instead of fragmenting, which
        # is what lets SDXL with CUDA graphs run on a 16 GB card (docs/BENCHMARKS.md). Read by torch at
        # the first CUDA allocation, so it is set before the model loads; a user's own setting wins.
        os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
        model = load_model(self.name_or_path or DEFAULT_MODEL, ranks.device(self.device), self.dtype, self.cuda_graphs, bool(self.compile))
        if self.compile is None and model.runner.graphed and photos > 1 and is_warm(model):
            model.use_cuda_graphs(compile=True)
        return model


@dataclass
class Outcome:
    """What a verb tells its user: lines for stdout, problems for stderr, and the exit code."""

    code: int = 0
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run_invert(inputs: list[str], output: str, model_choice: ModelChoice = ModelChoice(), prompt: str | None = None,
               method: str = "null-text", steps: int = DEFAULT_STEPS, guidance: float = 7.5,
               inner_steps: int = NullTextOptions.num_inner_steps, learning_rate: float = NullTextOptions.learning_rate,
               early_stop: float = NullTextOptions.early_stop_epsilon, batch_size: int | str = AUTO, force: bool = False,
               progress: bool = True) -> Outcome:
    """`p2p-real invert`: photos and folders of photos into OUTPUT/<photo>/; under a launcher, each
    rank inverts its share (runs/ranks.py) and rank 0 reports for all."""
    batch_size = batch_size_option(batch_size)
    photos = find_photos(inputs, prompt)
    single = len(photos) == 1 and len(inputs) == 1 and os.path.isfile(inputs[0])
    if single and not photos[0].caption:
        raise P2PError(f"{photos[0].path}: no caption; pass --prompt \"what the photo shows\"")
    if single:
        load_image(photos[0].path, EARLY_CHECK_SIZE)
    options = null_text_options(inner_steps, learning_rate, early_stop)
    ranks = Ranks.from_environment()
    progress = progress and ranks.leader  # one progress bar on the terminal: rank 0's, of its share
    photos = ranks.share(photos, key=lambda photo: str(photo.path))
    model = model_choice.load(ranks, len(photos)) if photos else None
    report = invert_photos(model, photos, output, method, steps, guidance, options, batch_size, force,
                           progress) if photos else RunReport()
    if model is not None and model.runner.compiled and report.done and method == "null-text":
        try:
            mark_warm(model)  # later runs over a folder compile by default
        except OSError:
            pass  # an unwritable cache folder costs later runs their default compilation, not this run its result
    if single and report.failed:
        raise P2PError(report.failed[0][1])
    tallies = ranks.gather(Tally.of(report, [str(photo.path) for photo, _ in report.failed],
                                    [inversion.metrics["psnr"] for _, inversion in report.done], missed_names(report.done)))
    if tallies is None:  # rank 0 speaks for all
        return Outcome(code=1 if report.failed else 0)
    total = Tally.merged(tallies)
    quality = f"; mean reconstruction PSNR {sum(total.psnrs) / len(total.psnrs):.2f} dB" if total.psnrs else ""
    return Outcome(
        code=1 if total.failed else 0,
        lines=[f"inverted {total.done} photo(s) in {total.seconds:.1f} s{processes(tallies)}, {total.skipped} already done, "
               f"{total.busy} being done by another run, "
               f"{len(total.failed)} failed{quality} -> {output}", *convergence_lines(total.missed)],
        problems=[f"skipped {path}: {message}" for path, message in total.failed],
    )


@dataclass
class Tally:
    """What one rank did, small enough to gather: counts, failures by name, PSNRs, photos that missed
    null-text's early-stop loss. `merged` adds the ranks' tallies up (seconds: the slowest rank's)."""

    done: int = 0
    skipped: int = 0
    busy: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    psnrs: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, report: RunReport, failed_names: list[str], psnrs=(), missed=()) -> "Tally":
        failed = [(name, message) for name, (_, message) in zip(failed_names, report.failed)]
        return cls(len(report.done), len(report.skipped), len(report.busy), failed, report.seconds, list(psnrs), list(missed))

    @classmethod
    def merged(cls, tallies: list["Tally"]) -> "Tally":
        return cls(sum(t.done for t in tallies), sum(t.skipped for t in tallies), sum(t.busy for t in tallies),
                   [f for t in tallies for f in t.failed], max(t.seconds for t in tallies),
                   [p for t in tallies for p in t.psnrs], [m for t in tallies for m in t.missed])


def processes(tallies: list[Tally]) -> str:
    """Under a launcher, e.g. " on 2 processes (2 + 2 done)"; nothing for one process."""
    if len(tallies) == 1:
        return ""
    return f" on {len(tallies)} processes ({' + '.join(str(tally.done) for tally in tallies)} done)"


def missed_names(done) -> list[str]:
    """Null-text photos whose loss stayed above the early-stop threshold at some timesteps, as
    "name (missed/steps)": the non-convergence users of the reference code meet, named."""
    missed = []
    for photo, inversion in done:
        reached = inversion.diagnostics.get("reached_threshold", [])
        if not all(reached):
            missed.append(f"{photo.name} ({len(reached) - sum(reached)}/{len(reached)})")
    return missed


def convergence_lines(missed: list[str]) -> list[str]:
    if not missed:
        return []
    return [f"null-text stayed above the early-stop loss at some timesteps (see diagnostics in inversion.json): "
            f"{', '.join(missed)}; more --inner-steps may help"]


def run_edit(source: str, output: str, model_choice: ModelChoice = ModelChoice(), target: str | None = None,
             name: str | None = None, prompt: str | None = None, kind: str = "auto",
             cross_replace_steps: float = EditOptions.cross_replace_steps,
             self_replace_steps: float = EditOptions.self_replace_steps, blend: list[str] | None = None,
             reweight: list[str] = (), word_steps: list[str] = (), mask: str | None = None, steps: int = DEFAULT_STEPS,
             batch_size: int | str = AUTO, maps: bool = False, force: bool = False, progress: bool = True) -> Outcome:
    """`p2p-real edit`: one edit from the options, or every edit of an edits file (a bad entry is
    reported and skipped, exit 1). With no model named, an artifact folder is edited with its own."""
    batch_size = batch_size_option(batch_size)
    source = Path(source)
    edits_file = find_edits_file(source)
    if edits_file is not None and mask is not None:
        raise P2PError(f"--mask: {edits_file} lists many edits; give each edit its own mask: field there instead")
    if edits_file is not None:
        jobs, bad_entries = read_edits_file(edits_file)
    else:
        recorded_model = check_edit_source(source, target, prompt)
        if model_choice.name_or_path is None and recorded_model:
            model_choice = replace(model_choice, name_or_path=recorded_model)
        options = edit_options(kind, cross_replace_steps, self_replace_steps, blend, reweight, word_steps)
        mask_path = None if mask is None else read_mask(mask).path  # a bad mask fails before the model loads
        jobs, bad_entries = [EditJob(source, target, options, prompt, name or "", mask_path)], []
    if not jobs:
        return nothing_to_run(bad_entries)
    ranks = Ranks.from_environment()
    progress = progress and ranks.leader  # one progress bar on the terminal: rank 0's, of its share
    jobs = ranks.share(jobs, key=lambda job: str(job.source))  # a photo's edits stay on one rank
    report = run_edits(model_choice.load(ranks), jobs, output, steps, force, maps, progress, batch_size) if jobs else RunReport()
    single = edits_file is None
    if single and report.failed:
        raise P2PError(report.failed[0][1])
    done = [f"edited {job.source} -> {folder}/edited.png (grid.png{', maps.png' if maps else ''})"
            for job, folder in (report.done if single else [])]
    failures = [f"the edit {job.target!r} of {job.source}" for job, _ in report.failed]
    tallies = ranks.gather(Tally.of(report, failures))
    if tallies is None:
        return Outcome(code=1 if report.failed or bad_entries else 0)
    total = Tally.merged(tallies)
    skipped = f", {len(bad_entries)} bad entr{'y' if len(bad_entries) == 1 else 'ies'} skipped" if bad_entries else ""
    return Outcome(
        code=1 if total.failed or bad_entries else 0,
        lines=[*done, f"{total.done} edit(s) in {total.seconds:.1f} s{processes(tallies)}, {total.skipped} already done, "
               f"{total.busy} being done by another run, {len(total.failed)} failed{skipped} -> {output}"],
        problems=[*(f"skipped {problem}" for problem in bad_entries),
                  *(f"skipped {failure}: {message}" for failure, message in total.failed)],
    )


def check_edit_source(source: Path, target: str | None, prompt: str | None) -> str | None:
    """One edit's source, checked before the model loads: an artifact folder (its model's name is
    returned), or a photo with its caption."""
    if not target:
        raise P2PError(f"{source}: give --target \"the edited caption\" (or pass a folder or file of edits: {', '.join(EDITS_FILES)})")
    if source.is_dir():
        return load_inversion(source).model_name  # a damaged artifact fails before the model loads
    if not source.is_file():
        raise P2PError(f"{source}: no such artifact folder, photo or edits file")
    if not prompt:
        raise P2PError(f"{source}: a photo needs --prompt with its caption (or pass an artifact folder)")
    load_image(source, EARLY_CHECK_SIZE)
    return None


def run_sweep(source: str, output: str, model_choice: ModelChoice = ModelChoice(), target: str | None = None,
              prompt: str | None = None, cross_grid: str = DEFAULT_CROSS, self_grid: str = DEFAULT_SELF,
              thresholds: str | None = None, blend: list[str] | None = None, kind: str = "auto", reweight: list[str] = (),
              batch_size: int = MAX_TARGETS_PER_PASS, steps: int = DEFAULT_STEPS, metrics: str | None = None,
              metric_weights: str = "pretrained", clip_model: str | None = None, edit_tolerance: float = DEFAULT_TOLERANCE,
              force: bool = False, progress: bool = True) -> Outcome:
    """`p2p-real sweep`: one photo (an artifact folder, or a photo inverted first), one target, a grid of
    edit strengths scored and one chosen (runs/sweep.py); a setting that failed is named (exit 1)."""
    source, output = Path(source), Path(output)
    if not target:
        raise P2PError(f"{source}: give --target \"the edited caption\"")
    if batch_size < 1:
        raise P2PError(f"--batch-size must be at least 1; got {batch_size}")
    recorded_model = check_edit_source(source, target, prompt)
    if model_choice.name_or_path is None and recorded_model:
        model_choice = replace(model_choice, name_or_path=recorded_model)
    grid = sweep_grid(cross_grid, self_grid, thresholds, blend)
    base = edit_options(kind, EditOptions.cross_replace_steps, EditOptions.self_replace_steps, blend, reweight, [])
    read_shapes = model_choice.name_or_path == "shapes"  # the built-in, whose edits shapes/check.py reads
    names = sweep_metric_names(metrics, read_shapes, target)
    model = model_choice.load()
    # Before the inversion, so that metric weights missing offline cost no minutes; LPIPS on PIE-Bench's SqueezeNet.
    metric_models = MetricModels.load(names, metric_weights, model.device, "squeeze", clip_model)
    artifact = sweep_artifact(model, source, prompt, output, steps, force, progress)
    inversion = load_inversion(artifact, model)
    result = sweep(model, inversion, target, base, grid, metric_models, read_shapes, edit_tolerance, batch_size, progress)
    best_yaml = write_sweep(output, model, inversion, artifact, target, base, result, read_shapes, edit_tolerance)
    files = "grid.png, plot.png, sweep.json" + (", best.yaml" if best_yaml else "")
    return Outcome(
        code=1 if result.failed else 0,
        lines=[*describe(result, best_yaml, output, model.name), f"swept {len(result.settings)} setting(s) of {artifact} in {result.seconds:.1f} s "
               f"({result.passes} sampling pass(es)), {len(result.failed)} failed -> {output} ({files})"],
        problems=[f"failed: {setting.label}: {message}" for setting, message in result.failed],
    )


def sweep_metric_names(metrics: str | None, read_shapes: bool, target: str) -> set[str]:
    """The metric networks a sweep loads; the edit score needs CLIP, except on the shapes model,
    whose one-object captions shapes/check.py reads back."""
    names = metric_names(metrics if metrics is not None else "lpips" if read_shapes else "lpips,clip")
    if read_shapes:
        try:
            parse_caption(target)
        except ValueError:
            raise P2PError(f"--target {target!r}: the shapes model's edits are read from one-object captions, "
                           f"such as 'a large red circle on a plain white background'; give one") from None
    elif "clip" not in names:
        raise P2PError("--metrics: the edit score is the target's CLIP score; keep clip in --metrics "
                       "(only --model shapes scores its edits without it)")
    return names


def sweep_artifact(model: Model, source: Path, prompt: str | None, output: Path, steps: int, force: bool,
                   progress: bool) -> Path:
    """The artifact folder to sweep: `source` itself, or the photo's, inverted first into OUTPUT/<photo>/
    as `p2p-real edit` does (a kept inversion of the same work is reused)."""
    if source.is_dir():
        return source
    job = EditJob(source, "", EditOptions(), prompt)
    names = source_names([job])
    failed = invert_sources(model, [job], output, names, steps, 1, force, progress)
    if failed:
        raise P2PError(failed[source])
    return inside(output, names[source])


def run_bench_reconstruct(source: str, output: str, model_choice: ModelChoice = ModelChoice(),
                          methods: str = ",".join(INVERSION_METHODS), steps: int = DEFAULT_STEPS, metrics: str = "lpips",
                          metric_weights: str = "pretrained", clip_model: str | None = None,
                          structure_model: str | None = None, progress: bool = True) -> Outcome:
    """`p2p-real bench reconstruct`: every method on every photo of a folder; JSON, plot and table."""
    names, chosen = metric_names(metrics), method_names(methods)
    photos = find_photos([source])
    missing = [str(photo.path) for photo in photos if not photo.caption]
    if missing:
        raise P2PError(f"no caption for {', '.join(missing)}: add them to captions.json")
    ranks = Ranks.from_environment()
    progress = progress and ranks.leader  # one progress bar on the terminal: rank 0's, of its share
    photos = ranks.share(photos, key=lambda photo: str(photo.path))
    if not photos:  # more ranks than photos: this one has nothing to do
        return ranks_rows(ranks, [])  # this rank has nothing to do, and is never rank 0 (which gets the first item)
    model = model_choice.load(ranks)
    metric_models = MetricModels.load(names, metric_weights, model.device, "alex", clip_model, structure_model)
    rows = ranks_rows(ranks, bench_reconstruct(model, photos, chosen, metric_models, steps, progress=progress))
    if not ranks.leader:
        return rows
    columns = ["seconds", "psnr", "ssim", "mse", "latent_mse"] + (["lpips"] if metric_models.lpips else [])
    summary = summarize(rows, "method", columns)
    device, output = device_name(model.device), Path(output)
    write_json(output / "reconstruct.json", {"model": model.name, "device": device, "steps": steps,
                                             "metric_weights": metric_weights, "summary": summary, "rows": rows})
    plot_quality_against_time(summary, output / "reconstruct.png", device)
    return bench_outcome(rows, [format_table(summary, columns, "method"),
                                f"-> {output / 'reconstruct.json'}, {output / 'reconstruct.png'}"])


def run_bench_edit(source: str, output: str, model_choice: ModelChoice = ModelChoice(), method: str = "null-text",
                   steps: int = DEFAULT_STEPS, metrics: str = "lpips,clip,structure", metric_weights: str = "pretrained",
                   clip_model: str | None = None, structure_model: str | None = None, progress: bool = True,
                   structure_pixels: str = "pie-bench") -> Outcome:
    """`p2p-real bench edit`: invert, edit and score each entry of a mapping file or edits file."""
    names = metric_names(metrics)
    edits, bad_entries = read_bench_edits(source)
    if not edits:
        return nothing_to_run(bad_entries)
    ranks = Ranks.from_environment()
    progress = progress and ranks.leader  # one progress bar on the terminal: rank 0's, of its share
    edits = ranks.share(edits, key=lambda edit: str(edit.image))  # a photo is inverted once, by one rank
    if not edits:
        return ranks_rows(ranks, [])  # this rank has nothing to do, and is never rank 0 (which gets the first item)
    model = model_choice.load(ranks)
    # PIE-Bench's LPIPS runs on SqueezeNet.
    metric_models = MetricModels.load(names, metric_weights, model.device, "squeeze", clip_model, structure_model)
    output = Path(output)
    protocol = Protocol(structure_pixels)
    rows = ranks_rows(ranks, bench_edit(model, edits, output, metric_models, method, steps, progress=progress,
                                        protocol=protocol))
    if not ranks.leader:
        return rows
    columns = ["structure", "psnr_bg", "lpips_bg", "mse_bg", "ssim_bg", "clip_whole", "clip_edited"]
    summary = summarize(rows, "type", columns)
    table = paper_table(rows)
    markdown = paper_markdown(table, f"{method} + P2P")
    write_json(output / "edit.json", {"model": model.name, "device": device_name(model.device), "method": method,
                                      "steps": steps, "metric_weights": metric_weights, "protocol": protocol.record(),
                                      "table": table, "markdown": markdown, "summary": summary, "rows": rows})
    (output / "edit.md").write_text(markdown + "\n")
    return bench_outcome(rows, [markdown, f"-> {output / 'edit.json'}, {output / 'edit.md'}, edited images in "
                                          f"{output / 'edits'}"], bad_entries)


def run_ui(inputs: list[str], output: str, model_choice: ModelChoice = ModelChoice(), method: str = "null-text",
           steps: int = DEFAULT_STEPS, host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> Outcome:
    """`p2p-real ui`: the web page (p2p_real/ui/) with the model loaded once, served until interrupted.
    Imported here, not at the top: only this verb needs gradio, an optional extra."""
    from ..ui.picker import check_inputs
    from ..ui.workbench import Workbench

    paths = [Path(path) for path in inputs]
    check_inputs(paths)  # a folder with nothing to pick is bad input before the model loads
    try:
        from ..ui.page import serve
    except ModuleNotFoundError as error:
        if error.name != "gradio":
            raise
        raise P2PError(UI_NEEDS_GRADIO) from None
    workbench = Workbench(model_choice.load(), Path(output), paths, steps, method)
    serve(workbench, host, port, share)
    return Outcome(lines=[f"stopped; what was inverted and edited is in {output}"])


def ranks_rows(ranks: Ranks, rows: list[dict]) -> list[dict] | Outcome:
    """Every rank's benchmark rows on rank 0; on the others, their own exit code (rank 0 reports)."""
    gathered = ranks.gather(rows)
    if gathered is None:
        return Outcome(code=1 if any("error" in row for row in rows) else 0)
    return [row for part in gathered for row in part]


def nothing_to_run(bad_entries: list[str]) -> Outcome:
    """A file whose every entry is bad is bad input (exit 2), each entry named; the model never loads."""
    return Outcome(code=2, problems=[f"error: {problem}" for problem in bad_entries])


def bench_outcome(rows: list[dict], lines: list[str], bad_entries: list[str] = ()) -> Outcome:
    """Exit 1 when any entry was bad or any row failed, each named on stderr."""
    problems = [*(f"skipped {problem}" for problem in bad_entries),
                *(f"failed: {row.get('photo') or row.get('key')}: {row['error']}" for row in rows if "error" in row)]
    return Outcome(1 if problems else 0, lines, problems)
