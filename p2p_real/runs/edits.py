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

import json
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..artifacts import Inversion, load_inversion, tensors_sha256
from ..editing.edit import EditResult, edit
from ..editing.pictures import token_maps
from ..errors import P2PError
from ..images import grid, save_png, to_pil
from ..models import Model
from . import locks
from .edits_file import EditJob
from .invert import invert_waiting
from .masks import MaskFile, read_mask
from .naming import edit_folder_name, given_name, inside, sanitize
from .photos import Photo, photo_names
from .report import RunReport

# Edits of one photo sampled together: N of them cost one pass of N + 1 prompts. More rows per
# pass would gain little on a GPU that is already busy and would risk its memory at SD's size.
MAX_TARGETS_PER_PASS = 8
# Side in pixels of each token's picture in maps.png: SD v1's 16x16 maps as 4x4 blocks, so that a
# row of a caption's tokens stays a readable width.
MAP_PICTURE_SIZE = 64
RECORD_FILE = "edited.json"  # edited.png's sidecar, the edit's record: written after every other file
EDIT_FILES = ("grid.png", "grid.json", "maps.png", "maps.json", "edited.png", RECORD_FILE)  # in the order written
NOT_PIXELS = ("model", "mask")  # settings recorded for people that leave the pixels as they are (the model's name, the mask's path)
NOT_COMPARED = ("mask",)  # the mask's path: mask_sha256 says which mask made an edit, wherever the file moved


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
    num_steps: int = 50,
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


def invert_sources(model: Model, jobs: list[EditJob], output: Path, names: dict[Path, str], num_steps: int,
                   batch_size: int | str, force: bool, progress: bool) -> dict[Path, str]:
    """Invert the photos (not artifact folders) the jobs name, into OUTPUT/<photo>/; the failures."""
    photos = {job.source: Photo(job.source, job.prompt, names[job.source]) for job in jobs if job.source.is_file()}
    if not photos:
        return {}
    inverted = invert_waiting(model, list(photos.values()), output, num_steps=num_steps, batch_size=batch_size,
                              force=force, keep_matching=True, progress=progress)
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
            report.failed.append((job, f"{artifact}: inverted with the prompt {inversion.prompt!r}, not {job.prompt!r}; "
                                       f"give each edit of this photo that caption, or use another --output"))
            continue
        try:
            mask = job_mask(job, inversion)
            settings = edit_settings(job, inversion, model, content, mask)
            folder = edit_folder(job, settings, photo_folder)
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
    mask = read_mask(job.mask)
    mask.check_covers(tuple(inversion.image.shape[:2]), tuple(inversion.noise_latents.shape[-2:]))
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
    settings = edit_settings(job, inversion, model, tensors_sha256(inversion), job_mask(job, inversion))
    return edit_folder(job, settings, photo_folder)


def claim_edits(edits: list[PendingEdit], force: bool, maps: bool, held: ExitStack, report: EditReport) -> list[PendingEdit]:
    """Lock each edit's folder and keep those still to do; the others go into the report as busy
    (another run is doing it), skipped (done) or failed (a named folder holding another edit)."""
    todo = []
    for pending in edits:
        with ExitStack() as lock:
            if not lock.enter_context(locks.claimed(pending.folder)):
                report.busy.append(pending.job)
                continue
            recorded = recorded_settings(pending.folder)
            problem = None if recorded is None or force else differences(recorded, pending.settings)
            if problem and pending.job.name:  # a folder the user named: never replaced unasked
                report.failed.append((pending.job, f"{pending.folder} holds an edit made with {problem}; pass --force "
                                                   f"to replace it, or give this edit another name"))
                continue
            wanted = ["edited.png", "grid.png"] + (["maps.png"] if maps else [])
            if not force and recorded is not None and not problem and all((pending.folder / name).is_file() for name in wanted):
                report.skipped.append(pending.job)
                continue
            held.enter_context(lock.pop_all())
            todo.append(pending)
    return todo


def edit_together(model: Model, inversion: Inversion, edits: list[PendingEdit], maps: bool, progress: bool,
                  report: EditReport) -> None:
    """Edits of one inversion in one sampling pass. When the pass fails (a bad word in one edit, or
    memory for many), each edit is tried alone, so that one bad edit never stops the others."""
    try:
        results = edit(model, inversion, [pending.job.target for pending in edits],
                       [pending.job.options for pending in edits], [pending.mask for pending in edits], progress=progress)
    except (P2PError, torch.OutOfMemoryError) as error:
        out_of_memory = isinstance(error, torch.OutOfMemoryError)
        failure = "out of GPU memory: try --dtype float16 if you chose float32" if out_of_memory else str(error)
    else:
        failure = None
    if failure is not None:  # retried here, once the failed pass's tensors (held by the traceback) are gone
        if len(edits) == 1:
            report.failed.append((edits[0].job, failure))
            return
        if out_of_memory:
            model.free_gpu_memory()
        for pending in edits:
            edit_together(model, inversion, [pending], maps, progress, report)
        return
    for pending, result in zip(edits, results):
        write_edit(result, pending, model.tokenizer if maps else None)
        report.done.append((pending.job, pending.folder))


def write_edit(result: EditResult, pending: PendingEdit, tokenizer=None) -> None:
    """grid.png (source | reconstruction | edit), maps.png given a tokenizer, then edited.png and its
    sidecar, the record. What an earlier run left goes first, the record before all, so that a run
    killed on the way leaves the edit to redo and never a file of other settings beside a record."""
    folder, job = pending.folder, pending.job
    folder.mkdir(parents=True, exist_ok=True)
    for name in reversed(EDIT_FILES):
        (folder / name).unlink(missing_ok=True)
    settings = {**pending.settings, "resolved_kind": result.kind}  # what `auto` chose
    pictures = [to_pil(result.source), to_pil(result.reconstruction), to_pil(result.edited)]
    save_png(grid(pictures, ["source", "reconstruction", job.target[:40]]), folder / "grid.png", settings)
    if tokenizer is not None:
        maps = token_maps(result.cross_maps, 1, tokenizer, job.target, MAP_PICTURE_SIZE)
        save_png(maps, folder / "maps.png", settings)
    save_png(to_pil(result.edited), folder / "edited.png", settings)


def edit_settings(job: EditJob, inversion: Inversion, model: Model, inversion_sha256: str, mask: MaskFile | None = None) -> dict:
    """What made an edit, as written into its PNG chunk and JSON sidecar (and compared on resume):
    the target, the options, the inversion it starts from, by content, and the painted mask if any
    (no mask: no mask keys, so the records of edits made before masks existed still match)."""
    return json.loads(json.dumps({
        "prompt": job.target, "source_prompt": inversion.prompt, "steps": inversion.num_steps,
        "guidance": inversion.guidance_scale, "method": inversion.method, "model": model.name,
        "model_fingerprint": model.fingerprint, "inversion_sha256": inversion_sha256, **asdict(job.options),
        **({} if mask is None else mask.settings()),
    }))


def recorded_settings(folder: Path) -> dict | None:
    """The settings edited.json records (less what `auto` chose); None when there is no readable record."""
    try:
        recorded = json.loads((folder / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict):
        return None
    recorded.pop("resolved_kind", None)
    return recorded


def differences(recorded: dict, wanted: dict) -> str | None:
    """What differs between two edits' settings, in words ("self_replace_steps 0.6, not 0.2"); None when nothing."""
    keys = [key for key in dict.fromkeys([*wanted, *recorded]) if key not in NOT_COMPARED and recorded.get(key) != wanted.get(key)]
    return ", ".join(f"{key} {recorded.get(key)!r}, not {wanted.get(key)!r}" for key in keys) or None
