"""Benchmarks users run: reconstruction quality and time per inversion method, and edit quality
(fidelity to the source against success of the edit) in PIE-Bench's form; their JSON and plot."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from ..artifacts import Inversion, load_inversion, tensors_sha256
from ..devices import synchronize
from ..editing.edit import edit
from ..editing.options import EditOptions
from ..errors import P2PError
from ..eval.pie_bench import BenchEdit
from ..eval.pie_bench_protocol import Protocol, pie_bench_scores
from ..eval.scores import MetricModels
from ..images import load_image, save_png, to_pil, to_tensor, write_json_atomic
from ..inversion.options import NullTextOptions
from ..models import Model
from ..pipeline import invert
from .invert import InversionSettings, file_sha256, invert_waiting
from .naming import inside, sanitize, short_hash
from .photos import Photo
from .records import edit_record


def bench_reconstruct(
    model: Model,
    photos: list[Photo],
    methods: list[str],
    metric_models: MetricModels,
    num_steps: int | None = None,  # None: the model family's
    guidance_scale: float | None = None,
    options: NullTextOptions = NullTextOptions(),
    progress: bool = True,
) -> list[dict]:
    """One row per (photo, method): seconds for the whole inversion and its reconstruction metrics."""
    rows = []
    loaded = []
    for photo in photos:
        try:
            loaded.append((photo, load_image(photo.path, model.resolution)))
        except P2PError as error:
            rows.append({"photo": str(photo.path), "error": str(error)})
    if loaded:  # one-time costs (kernels, allocator, caches) stay out of the first method's time
        invert(model, [loaded[0][1]], [loaded[0][0].caption], "ddim", 1, guidance_scale)
    bar = tqdm(total=len(loaded) * len(methods), desc="bench reconstruct", disable=not progress)
    for photo, image in loaded:
        for method in methods:
            synchronize(model.device)
            started = time.perf_counter()
            [inversion] = invert(model, [image], [photo.caption], method, num_steps, guidance_scale, options)
            synchronize(model.device)
            seconds = time.perf_counter() - started
            row = {"photo": str(photo.path), "method": method, "seconds": seconds, **inversion.metrics}
            if metric_models.lpips is not None:
                pair = to_tensor([to_pil(inversion.reconstruction), image])
                row["lpips"] = float(metric_models.lpips(pair[:1], pair[1:])[0])
            rows.append(row)
            bar.update()
    bar.close()
    return rows


def bench_edit(
    model: Model,
    edits: list[BenchEdit],
    output: Path,
    metric_models: MetricModels,
    inversion_settings: InversionSettings = InversionSettings(),
    options: EditOptions = EditOptions(),
    progress: bool = True,
    protocol: Protocol = Protocol(),
) -> list[dict]:
    """Invert each photo (kept in OUTPUT/artifacts/, keyed by content, for resuming), edit it, score
    the edit PIE-Bench's way (`protocol`). Each row names the artifact and the edited image it used."""
    rows = []
    for entry in tqdm(edits, desc="bench edit", disable=not progress):
        try:
            artifact, inversion = bench_inversion(model, entry, output / "artifacts", inversion_settings)
            edit_options = entry.options or replace(options, blend_words=entry.blend_words)
            result = edit(model, inversion, entry.target_prompt, edit_options)
        except P2PError as error:
            rows.append({"key": entry.key, "type": entry.edit_type, "error": str(error)})
            continue
        # The record `p2p-real edit` writes, with the artifact's folder and what `auto` chose.
        settings = {**edit_record(entry.target_prompt, edit_options, inversion, model, tensors_sha256(inversion)),
                    "resolved_kind": result.kind, "artifact": artifact.name}
        edited = inside(output, "edits", f"{sanitize(entry.key, 'entry')}-{short_hash(settings)}.png")
        edited.parent.mkdir(parents=True, exist_ok=True)
        save_png(to_pil(result.edited), edited, settings)
        rows.append({"key": entry.key, "type": entry.edit_type, "artifact": f"artifacts/{artifact.name}",
                     "edited": f"edits/{edited.name}", **pie_bench_scores(result, entry, metric_models, protocol)})
    return rows


def bench_inversion(model: Model, entry: BenchEdit, artifacts: Path,
                    settings: InversionSettings) -> tuple[Path, Inversion]:
    """The entry's inversion and its folder, ARTIFACTS/<key>-<hash of the photo's bytes and of all
    that makes the inversion>: reused by a later run only for the same work, never relabelled."""
    settings = settings.for_model(model)  # the family's steps and guidance when none were given
    identity = settings.record(model, entry.source_prompt, file_sha256(entry.image))
    photo = Photo(entry.image, entry.source_prompt, f"{sanitize(entry.key, 'entry')}-{short_hash(identity)}")
    report = invert_waiting(model, [photo], artifacts, settings, progress=False)
    if report.failed:
        raise P2PError(report.failed[0][1])
    folder = inside(artifacts, photo.name)
    # Read back even when just made, so that a run and its resumption edit the very same tensors.
    return folder, load_inversion(folder, model)


def plot_quality_against_time(summary: dict[str, dict], path: Path, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, 2, figsize=(9, 3.5), dpi=120)
    for axes, column, label in ((panels[0], "psnr", "reconstruction PSNR (dB), higher is better"),
                                (panels[1], "latent_mse", "latent MSE to the photo's latent, lower is better")):
        for method, values in summary.items():
            axes.scatter(values["seconds"], values[column], s=40)
            axes.annotate(method, (values["seconds"], values[column]), textcoords="offset points", xytext=(5, 5))
        axes.set_xscale("log")
        axes.set_xlabel(f"seconds per photo ({device})")
        axes.set_ylabel(label, fontsize=8)
        axes.grid(alpha=0.3)
    figure.suptitle("Inversion methods: quality against time")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)
