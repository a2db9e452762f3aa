"""Many edits in one run, from an edits file (runs/edits_file.py) or a single command line; resumable,
and safe beside other runs on the same output.

Photos are inverted first into OUTPUT/<photo>/ (runs/invert.py: kept, and reused only for the same
work); a photo another run is inverting is waited for. Each edit goes to OUTPUT/<photo>/<edit>/,
where <edit> is the user's name for it, or the slug of its target plus a hash of all that changes
its pixels (runs/naming.py), so that two different edits never share a folder. An edit is done when
its record, edited.json (written last), holds the same settings and every file the run asks for is
there. The edits of one photo still to do are sampled together, up to MAX_TARGETS_PER_PASS a pass.
A painted mask is recorded by its path and the SHA-256 of its bytes: another mask is another edit,
the same mask moved is the same edit.
"""
from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..artifacts import Inversion, load_inversion, tensors_sha256
from ..editing.edit import EditResult, edit
from ..errors import P2PError
from ..models import Model
from . import locks
from .edit_outputs import differences, recorded_settings, write_edit
from .edits_file import EditJob
from .invert import InversionSettings, invert_waiting
from .masks import MaskFile, read_mask
from .memory import Failed, split_on_out_of_memory
from .naming import edit_folder_name, file_system_problem, given_name, inside, sanitize, usable_folder
from .photos import Photo, photo_names
from .records import edit_record
from .report import RunReport

# Edits of one photo sampled together: N of them cost one pass of N + 1 prompts. More rows per
# pass would gain little on a GPU that is already busy and would risk its memory at SD's size.
MAX_TARGETS_PER_PASS = 8
# Settings recorded for people that leave the pixels as they are (the model's name, the mask's path).
NOT_PIXELS = ("model", "mask")
OUT_OF_MEMORY_ADVICE = "try --dtype float16 if you chose float32"


EditReport = RunReport[EditJob, Path]


@dataclass
class PendingEdit:
    job: EditJob
    folder: Path  # OUTPUT/<photo>/<edit>
    settings: dict  # what edited.json will record
    mask: torch.Tensor | None = None  # (H, W) in [0, 1]: the painted mask's values, 1 = edit


def run_edits(
    model: Model,
    jobs: list[EditJob],
    output: str | Path,
    num_steps: int | None = None,
    force: bool = False,
    maps: bool = False,
    progress: bool = True,
    batch_size: int | str = 1,  # or "auto" (runs/batch_size.py)
) -> EditReport:
    """Invert the photos that need it (`batch_size` at a time), then run each edit into
    OUTPUT/<photo>/<edit>/: the pending edits of one photo together, in one sampling pass per
    `MAX_TARGETS_PER_PASS` of them. `force` redoes the edits, and replaces kept inversions and named
    edits that record other settings (inversions that match are kept)."""
    started = time.perf_counter()
    output = Path(output)
    report = EditReport()
    names = source_names(jobs)
    failed_photos = invert_sources(model, jobs, output, names, num_steps, batch_size, force, progress)
    groups: dict[Path, list[EditJob]] = {}  # artifact -> its edits, in the order given
    for job in jobs:
        if job.source in failed_photos:
            report.failed.append((job, failed_photos[job.source]))
        else:
            groups.setdefault(job.source if job.source.is_dir() else inside(output, names[job.source]), []).append(job)
    bar = tqdm(total=sum(map(len, groups.values())), desc="editing", unit="edit", disable=not progress)
    folders: dict[Path, dict] = {}  # edit folder -> the settings this run writes there
    for artifact, group in groups.items():  # one artifact in memory at a time
        planned = plan_edits(model, artifact, group, inside(output, names[group[0].source]), folders, report)
        if planned:
            inversion, edits = planned
            for start in range(0, len(edits), MAX_TARGETS_PER_PASS):
                with ExitStack() as held:  # the pass's edit locks, released once its files are written
                    todo = claim_edits(edits[start : start + MAX_TARGETS_PER_PASS], force, maps, held, report)
                    if todo:
                        edit_together(model, inversion, todo, maps, progress, report)
        bar.update(len(group))
    bar.close()
    report.seconds = time.perf_counter() - started
    return report


def source_names(jobs: list[EditJob]) -> dict[Path, str]:
    """Each source's folder name in OUTPUT: a photo's as `p2p-real invert` names it, an artifact
    folder's own name."""
    names = photo_names(sorted({job.source for job in jobs if job.source.is_file()}))
    for job in jobs:
        if job.source.is_dir():
            names[job.source] = sanitize(job.source.resolve().name, "photo")
    return names


def invert_sources(model: Model, jobs: list[EditJob], output: Path, names: dict[Path, str], num_steps: int | None,
                   batch_size: int | str, force: bool, progress: bool) -> dict[Path, str]:
    """Invert the photos (not artifact folders) the jobs name, into OUTPUT/<photo>/; the failures."""
    photos = {job.source: Photo(job.source, job.prompt, names[job.source]) for job in jobs if job.source.is_file()}
    if not photos:
        return {}
    inverted = invert_waiting(model, list(photos.values()), output, InversionSettings(num_steps=num_steps), batch_size,
                              force, progress, keep_matching=True)
    return {photo.path: message for photo, message in inverted.failed}


def plan_edits(model: Model, artifact: Path, jobs: list[EditJob], photo_folder: Path, folders: dict[Path, dict],
               report: EditReport) -> tuple[Inversion, list[PendingEdit]] | None:
    """The artifact's inversion, and each of its edits' folder and settings; an edit that cannot be
    run, or that this run already writes, goes into the report."""
    try:
        inversion = load_inversion(artifact, model)  # read and hash-checked once for all its edits
    except P2PError as error:
        report.failed.extend((job, str(error)) for job in jobs)
        return None
    content = tensors_sha256(inversion)
    pending = []
    for job in jobs:
        if job.source.is_file() and job.prompt and job.prompt != inversion.prompt:
            # One photo with several captions in one run: its artifact holds the one it was inverted with.
            report.failed.append((job, f"{artifact}: inverted with the prompt {inversion.prompt!r}, "
                                       f"not {job.prompt!r}; "
                                       f"give each edit of this photo that caption, or use another --output"))
            continue
        try:
            mask = job_mask(job, inversion)
            settings = edit_record(job.target, job.options, inversion, model, content, mask)
            output = photo_folder.parent  # photo_folder is OUTPUT/<photo>
            folder = usable_folder(output, edit_folder(job, settings, usable_folder(output, photo_folder)))
        except P2PError as error:
            report.failed.append((job, str(error)))
            continue
        earlier = folders.setdefault(folder, settings)
        if earlier is not settings:  # two edits of this run into one folder: the same edit, or a clash of names
            problem = differences(earlier, settings)
            if problem:
                report.failed.append((job, f"{folder}: an earlier edit of this run writes there, with {problem}; "
                                           f"give this edit another name"))
            else:
                report.skipped.append(job)
            continue
        pending.append(PendingEdit(job, folder, settings, None if mask is None else mask.values))
    return (inversion, pending) if pending else None


def job_mask(job: EditJob, inversion: Inversion) -> MaskFile | None:
    """The job's mask file, read now (its content is what the record names), and checked to leave
    some latent cell of this photo to edit."""
    if job.mask is None:
        return None
    mask = job.mask_file or read_mask(job.mask)  # read already where the job was made, to check it
    mask.check_covers(tuple(inversion.image.shape[:2]), tuple(inversion.noise_latents.shape[-2:]))
    mask.check_lines_up(inversion.source_path)
    return mask


def edit_folder(job: EditJob, settings: dict, photo_folder: Path) -> Path:
    """OUTPUT/<photo>/<edit>: the user's name for the edit, else its target's slug and a hash of the
    settings that change its pixels."""
    pixels = {key: value for key, value in settings.items() if key not in NOT_PIXELS}
    return inside(photo_folder, given_name(job.name) if job.name else edit_folder_name(job.target, pixels))


def artifact_edit_folder(model: Model, job: EditJob, output: str | Path) -> Path:
    """Where run_edits puts the edit `job` of an artifact folder, or found it already done: a
    skipped edit's report names only the job."""
    inversion = load_inversion(job.source, model)
    photo_folder = inside(Path(output), source_names([job])[job.source])
    settings = edit_record(job.target, job.options, inversion, model, tensors_sha256(inversion),
                           job_mask(job, inversion))
    return edit_folder(job, settings, photo_folder)


def claim_edits(edits: list[PendingEdit], force: bool, maps: bool, held: ExitStack,
                report: EditReport) -> list[PendingEdit]:
    """Lock each edit's folder and keep those still to do; the others go into the report as busy
    (another run is doing it), skipped (done) or failed (a named folder holding another edit)."""
    todo = []
    for pending in edits:
        with ExitStack() as lock:
            try:
                claimed = lock.enter_context(locks.claimed(pending.folder))
            except OSError as error:  # a lock file that cannot be made (a read-only or full output)
                report.failed.append((pending.job, file_system_problem(error, pending.folder)))
                continue
            if not claimed:
                report.busy.append(pending.job)
                continue
            recorded = recorded_settings(pending.folder)
            problem = None if recorded is None or force else differences(recorded, pending.settings)
            if problem and pending.job.name:  # a folder the user named: never replaced unasked
                report.failed.append((pending.job, f"{pending.folder} holds an edit made with {problem}; pass --force "
                                                   f"to replace it, or give this edit another name"))
                continue
            wanted = ["edited.png", "grid.png"] + (["maps.png"] if maps else [])
            complete = all((pending.folder / name).is_file() for name in wanted)
            if not force and recorded is not None and not problem and complete:
                report.skipped.append(pending.job)
                continue
            held.enter_context(lock.pop_all())
            todo.append(pending)
    return todo


def edit_together(model: Model, inversion: Inversion, edits: list[PendingEdit], maps: bool, progress: bool,
                  report: EditReport) -> None:
    """Edits of one inversion in one sampling pass. When the pass fails (a bad word in one edit, or
    memory for many), each edit is tried alone (runs/memory.py), so that one bad edit never stops the others."""
    def work(part: list[PendingEdit]) -> list[EditResult]:
        return edit(model, inversion, [pending.job.target for pending in part],
                    [pending.job.options for pending in part],
                    [pending.mask for pending in part], progress=progress)

    results = split_on_out_of_memory(work, edits, model, OUT_OF_MEMORY_ADVICE, one_by_one=True, also=(P2PError,))
    for pending, result in zip(edits, results):
        if isinstance(result, Failed):
            report.failed.append((pending.job, result.message))
        else:
            try:
                write_edit(result, pending, model.tokenizer if maps else None)
            except OSError as error:
                report.failed.append((pending.job, file_system_problem(error, pending.folder)))
            else:
                report.done.append((pending.job, pending.folder))
