"""`p2p-real bench reconstruct | edit`: the benchmarks users run, shared among ranks under a launcher;
rank 0 writes the JSON (and plot) and prints the table for all."""
from __future__ import annotations

from pathlib import Path

from ..devices import device_name
from ..errors import P2PError
from ..eval.pie_bench_protocol import Protocol
from ..eval.pie_bench_table import paper_markdown, paper_table
from ..eval.scores import MetricModels
from ..eval.summary import format_table, summarize
from ..images import write_atomic
from .bench import bench_edit, bench_reconstruct, plot_quality_against_time, write_json
from .invert import InversionSettings
from .outcome import Outcome, bench_outcome, nothing_to_run, ranks_rows, share_work
from .photos import find_photos
from .pie_bench import read_bench_edits
from .requests import BenchEditRequest, BenchReconstructRequest

RECONSTRUCT_COLUMNS = ["seconds", "psnr", "ssim", "mse", "latent_mse"]
EDIT_COLUMNS = ["structure", "psnr_bg", "lpips_bg", "mse_bg", "ssim_bg", "clip_whole", "clip_edited"]


def run_bench_reconstruct(request: BenchReconstructRequest) -> Outcome:
    """Every method on every photo of a folder; JSON, plot and table."""
    photos = find_photos([request.source])
    missing = [str(photo.path) for photo in photos if not photo.caption]
    if missing:
        raise P2PError(f"no caption for {', '.join(missing)}: add them to captions.json")
    share = share_work(photos, lambda photo: str(photo.path), request.progress)
    if not share.items:  # more ranks than photos: this one has nothing to do, and is never rank 0
        return ranks_rows(share.ranks, [])
    model = request.model.load(share.ranks)
    metric_models = MetricModels.load(set(request.metrics), request.metric_weights, model.device, "alex",
                                      request.clip_model, request.structure_model)
    rows = ranks_rows(share.ranks, bench_reconstruct(model, share.items, list(request.methods), metric_models,
                                                     request.steps, progress=share.progress))
    if not share.ranks.leader:
        return rows
    columns = RECONSTRUCT_COLUMNS + (["lpips"] if metric_models.lpips else [])
    summary = summarize(rows, "method", columns)
    device, output = device_name(model.device), Path(request.output)
    steps = model.text.default_steps if request.steps is None else request.steps
    write_json(output / "reconstruct.json", {"model": model.name, "device": device, "steps": steps,
                                             "metric_weights": request.metric_weights, "summary": summary,
                                             "rows": rows})
    plot_quality_against_time(summary, output / "reconstruct.png", device)
    return bench_outcome(rows, [format_table(summary, columns, "method"),
                                f"-> {output / 'reconstruct.json'}, {output / 'reconstruct.png'}"])


def run_bench_edit(request: BenchEditRequest) -> Outcome:
    """Invert, edit and score each entry of a mapping file or edits file."""
    edits, bad_entries = read_bench_edits(request.source)
    if not edits:
        return nothing_to_run(bad_entries)
    share = share_work(edits, lambda edit: str(edit.image), request.progress)  # a photo is inverted once, by one rank
    if not share.items:
        return ranks_rows(share.ranks, [])  # this rank has nothing to do, and is never rank 0 (it gets the first item)
    model = request.model.load(share.ranks)
    # PIE-Bench's LPIPS runs on SqueezeNet.
    metric_models = MetricModels.load(set(request.metrics), request.metric_weights, model.device, "squeeze",
                                      request.clip_model, request.structure_model)
    output, protocol = Path(request.output), Protocol(request.structure_pixels)
    inversion = InversionSettings(request.method, request.steps).for_model(model)
    rows = ranks_rows(share.ranks, bench_edit(model, share.items, output, metric_models, inversion,
                                              progress=share.progress, protocol=protocol))
    if not share.ranks.leader:
        return rows
    summary = summarize(rows, "type", EDIT_COLUMNS)
    table = paper_table(rows)
    markdown = paper_markdown(table, f"{request.method} + P2P")
    write_json(output / "edit.json", {"model": model.name, "device": device_name(model.device),
                                      "method": request.method, "steps": inversion.num_steps,
                                      "metric_weights": request.metric_weights, "protocol": protocol.record(),
                                      "table": table, "markdown": markdown, "summary": summary, "rows": rows})
    write_atomic(output / "edit.md", (markdown + "\n").encode())
    return bench_outcome(rows, [markdown, f"-> {output / 'edit.json'}, {output / 'edit.md'}, "
                                          f"edited images in {output / 'edits'}"], bad_entries)
