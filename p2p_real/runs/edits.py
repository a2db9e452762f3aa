"""Many edits in one run, from an edits file (runs/edits_file.py) or a single command line; resumable.

Photos without an artifact in OUTPUT/<photo>/ are inverted first (and kept); each edit goes to
OUTPUT/<photo>/<name>/ and is skipped when its edited.json already records the same settings. The
edits of one photo still to do are sampled together, in one pass for up to MAX_TARGETS_PER_PASS.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..artifacts import Inversion, load_inversion
from ..editing.edit import EditResult, edit
from ..editing.pictures import token_maps
from ..errors import P2PError
from ..images import grid, save_png, to_pil
from ..models import Model
from .edits_file import EditJob
from .invert import invert_photos
from .photos import Photo
from .report import RunReport

# Edits of one photo sampled together: N of them cost one pass of N + 1 prompts. More rows per
# pass would gain little on a GPU that is already busy and would risk its memory at SD's size.
MAX_TARGETS_PER_PASS = 8
# Side in pixels of each token's picture in maps.png: SD v1's 16x16 maps as 4x4 blocks, so that a
# row of a caption's tokens stays a readable width.
MAP_PICTURE_SIZE = 64


EditReport = RunReport[EditJob, Path]


def run_edits(
    model: Model,
    jobs: list[EditJob],
    output: str | Path,
    num_steps: int = 50,
    force: bool = False,
    maps: bool = False,
    progress: bool = True,
    batch_size: int = 1,
) -> EditReport:
    """Invert the photos that need it (`batch_size` at a time), then run each edit into
    OUTPUT/<photo>/<edit name>/: the pending edits of one photo together, in one sampling pass per
    `MAX_TARGETS_PER_PASS` of them."""
    started = time.perf_counter()
    output = Path(output)
    report = EditReport()
    failed_photos = invert_sources(model, jobs, output, num_steps, batch_size, progress)
    groups: dict[Path, list[EditJob]] = {}  # artifact -> its edits, in the order given
    for job in jobs:
        if job.source in failed_photos:
            report.failed.append((job, failed_photos[job.source]))
        else:
            groups.setdefault(job.artifact(output), []).append(job)
    bar = tqdm(total=sum(map(len, groups.values())), desc="editing", unit="edit", disable=not progress)
    for artifact, group in groups.items():  # one artifact in memory at a time
        pending = pending_edits(model, artifact, group, output, force, report)
        if pending:
            inversion, edits = pending
            for start in range(0, len(edits), MAX_TARGETS_PER_PASS):
                edit_together(model, inversion, edits[start : start + MAX_TARGETS_PER_PASS], maps, progress, report)
        bar.update(len(group))
    bar.close()
    report.seconds = time.perf_counter() - started
    return report


def invert_sources(model: Model, jobs: list[EditJob], output: Path, num_steps: int, batch_size: int,
                   progress: bool) -> dict[Path, str]:
    """Invert the photos (not artifact folders) the jobs name, into OUTPUT/<photo>/; the failures."""
    photos = {job.source: Photo(job.source, job.prompt, job.photo_name) for job in jobs if job.source.is_file()}
    if not photos:
        return {}
    inverted = invert_photos(model, list(photos.values()), output, num_steps=num_steps, batch_size=batch_size, progress=progress)
    return {photo.path: message for photo, message in inverted.failed}


@dataclass
class PendingEdit:
    job: EditJob
    folder: Path  # OUTPUT/<photo>/<edit name>
    settings: dict  # what edited.json will record


def pending_edits(model: Model, artifact: Path, jobs: list[EditJob], output: Path, force: bool,
                  report: EditReport) -> tuple[Inversion, list[PendingEdit]] | None:
    """The artifact's inversion and those of its edits still to do; the others go into the report."""
    try:
        inversion = load_inversion(artifact, model)  # read and hash-checked once for all its edits
    except P2PError as error:
        report.failed.extend((job, str(error)) for job in jobs)
        return None
    pending = []
    for job in jobs:
        folder = output / job.photo_name / job.edit_name
        if job.source.is_file() and job.prompt and job.prompt != inversion.prompt:
            # A kept artifact is reused only for the caption it was inverted with.
            report.failed.append((job, f"{artifact}: inverted with the prompt {inversion.prompt!r}, not {job.prompt!r}; "
                                       f"delete that folder or use another --output to invert again"))
            continue
        settings = edit_settings(job, inversion, model)
        if not force and recorded_settings(folder) == settings:
            report.skipped.append(job)
        else:
            pending.append(PendingEdit(job, folder, settings))
    return (inversion, pending) if pending else None


def edit_together(model: Model, inversion: Inversion, edits: list[PendingEdit], maps: bool, progress: bool,
                  report: EditReport) -> None:
    """Edits of one inversion in one sampling pass. When the pass fails (a bad word in one edit, or
    memory for many), each edit is tried alone, so that one bad edit never stops the others."""
    try:
        results = edit(model, inversion, [pending.job.target for pending in edits],
                       [pending.job.options for pending in edits], progress=progress)
    except (P2PError, torch.OutOfMemoryError) as error:
        if len(edits) > 1:
            for pending in edits:
                edit_together(model, inversion, [pending], maps, progress, report)
            return
        message = str(error) if isinstance(error, P2PError) else "out of GPU memory: try --dtype float16 if you chose float32"
        report.failed.append((edits[0].job, message))
        return
    for pending, result in zip(edits, results):
        write_edit(result, pending, model.tokenizer if maps else None)
        report.done.append((pending.job, pending.folder))


def write_edit(result: EditResult, pending: PendingEdit, tokenizer=None) -> None:
    """edited.png, grid.png (source | reconstruction | edit) and, given a tokenizer, maps.png."""
    folder, job = pending.folder, pending.job
    folder.mkdir(parents=True, exist_ok=True)
    settings = {**pending.settings, "resolved_kind": result.kind}  # what `auto` chose
    save_png(to_pil(result.edited), folder / "edited.png", settings)
    pictures = [to_pil(result.source), to_pil(result.reconstruction), to_pil(result.edited)]
    save_png(grid(pictures, ["source", "reconstruction", job.target[:40]]), folder / "grid.png", settings)
    if tokenizer is not None:
        maps = token_maps(result.cross_maps, 1, tokenizer, job.target, MAP_PICTURE_SIZE)
        save_png(maps, folder / "maps.png", settings)


def edit_settings(job: EditJob, inversion: Inversion, model: Model) -> dict:
    """What made an edit, as written into its PNG chunk and JSON sidecar (and compared on resume)."""
    options = asdict(job.options)
    return json.loads(json.dumps({
        "prompt": job.target, "source_prompt": inversion.prompt, "steps": inversion.num_steps,
        "guidance": inversion.guidance_scale, "method": inversion.method, "model": model.name,
        "model_fingerprint": model.fingerprint, **options,
    }))


def recorded_settings(folder: Path) -> dict | None:
    try:
        recorded = json.loads((folder / "edited.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not (folder / "edited.png").is_file():
        return None
    recorded.pop("resolved_kind", None)
    return recorded
