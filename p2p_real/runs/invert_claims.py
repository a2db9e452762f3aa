"""Claiming photos to invert: a photo is locked (runs/locks.py) from when it is checked until its
artifact is written; it counts as done when OUTPUT/<photo>/inversion.json records the same photo
bytes, caption, model, method, steps, guidance and method options as the run would use. A record
of other work fails the photo with one line naming the difference, unless `force`.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from ..artifacts import TENSORS_FILE, Inversion, read_record, sha256
from ..defaults import DEFAULT_METHOD
from ..errors import P2PError
from ..images import load_image
from ..inversion.methods import METHODS
from ..inversion.options import NullTextOptions
from ..models import Model
from . import locks
from .naming import file_system_problem, inside, usable_folder
from .photos import Photo
from .records import record_differences
from .report import RunReport

JobReport = RunReport[Photo, Inversion]
# How the record's fields read in a message: "inverted with steps 10, not 20".
RECORD_LABELS = {"prompt": "the prompt", "model_fingerprint": "the model fingerprint", "method": "the method",
                 "num_steps": "steps", "guidance_scale": "guidance"}


@dataclass(frozen=True)
class InversionSettings:
    """What a run asks of every photo's inversion."""

    method: str = DEFAULT_METHOD
    num_steps: int | None = None  # None: the model family's (50 for SD v1 and SDXL, 28 for SD3)
    guidance_scale: float | None = None  # None: the family's (7.5; SD3 7.0)
    options: NullTextOptions = NullTextOptions()

    def for_model(self, model: Model) -> "InversionSettings":
        """These settings with the model family's defaults filled in."""
        steps = model.text.default_steps if self.num_steps is None else self.num_steps
        guidance = model.text.default_guidance if self.guidance_scale is None else self.guidance_scale
        return replace(self, num_steps=steps, guidance_scale=guidance)

    def record(self, model: Model, caption: str, source_sha256: str) -> dict:
        """The fields of inversion.json that an inversion of this photo by this run would hold."""
        return {"source_sha256": source_sha256, "prompt": caption, "model_fingerprint": model.fingerprint,
                "method": self.method, "num_steps": self.num_steps, "guidance_scale": self.guidance_scale,
                "options": METHODS[self.method].record(self.options, model.text.null_text_record)}


@dataclass
class Claimed:
    """A photo this run holds the lock of and will invert."""

    photo: Photo
    image: Image.Image
    source_sha256: str


@dataclass
class Batch:
    """Photos claimed to be inverted together, their locks (held until their artifacts are written),
    and the photos of the queue passed over on the way, as skipped, busy or failed."""

    claimed: list[Claimed]
    locks: ExitStack
    not_claimed: JobReport


def claim_batch(model: Model, queue: list[Photo], output: Path, settings: InversionSettings, force: bool,
                keep_matching: bool, size: int) -> Batch:
    """Claim photos from the end of `queue` until `size` are claimed or none is left (the reader thread's work)."""
    batch = Batch([], ExitStack(), JobReport())
    try:
        while queue and len(batch.claimed) < size:
            claimed = claim(model, queue.pop(), output, settings, force, keep_matching, batch.locks, batch.not_claimed)
            batch.claimed += [claimed] if claimed else []
    except BaseException:
        batch.locks.close()
        raise
    return batch


def claim(model: Model, photo: Photo, output: Path, settings: InversionSettings, force: bool, keep_matching: bool,
          held: ExitStack, report: JobReport) -> Claimed | None:
    """Lock the photo's folder and read the photo when it needs inverting; else report why not."""
    if photo.problem:
        report.failed.append((photo, photo.problem))
        return None
    if not photo.caption:
        report.failed.append((photo, f"{photo.path}: no caption; give --prompt or add it to captions.json "
                                     f"or {photo.path.stem}.txt"))
        return None
    with ExitStack() as lock:
        try:
            folder = usable_folder(output, inside(output, photo.name))
            model.token_ids([photo.caption])  # a caption too long fails here, before any photo is read
            if not lock.enter_context(locks.claimed(folder)):
                report.busy.append(photo)
                return None
            digest = file_sha256(photo.path)
            wanted = settings.record(model, photo.caption, digest)
            if settled(folder, photo, wanted, force and not keep_matching, force, report):
                return None
            image = load_image(photo.path, model.resolution)
        except P2PError as error:
            report.failed.append((photo, str(error)))
            return None
        except OSError as error:  # a lock file or the folder that cannot be made (read-only, full)
            report.failed.append((photo, file_system_problem(error, output)))
            return None
        held.enter_context(lock.pop_all())
        return Claimed(photo, image, digest)


def settled(folder: Path, photo: Photo, wanted: dict, redo: bool, replace: bool, report: JobReport) -> bool:
    """Whether the artifact in `folder` settles the photo: done (skipped), or made otherwise or
    damaged (failed, unless `replace`). `redo` redoes it whatever it records."""
    try:
        recorded = read_record(folder)
    except P2PError as error:
        recorded, problem = {}, f"{error}, or use another --output"
    else:
        difference = None if recorded is None else record_difference(recorded, wanted)
        if recorded is not None and not difference and not tensors_intact(folder, recorded):
            return False  # the same work, but its tensors truncated or changed since: not done, redone
        problem = difference and f"{folder}: {difference}; pass --force to replace it, or use another --output"
    if recorded is None or redo or (problem and replace):
        return False
    if problem:
        report.failed.append((photo, problem))
    else:
        report.skipped.append(photo)
    return True


def record_difference(recorded: dict, wanted: dict) -> str | None:
    """How an artifact's record differs from what this run would make, in words; None when it does not."""
    if not recorded.get("source_sha256"):
        return "inverted by an older p2p-real, which did not record the photo's bytes"
    if recorded["source_sha256"] != wanted["source_sha256"]:
        return f"inverted from another photo ({recorded.get('source_path') or 'a photo with other bytes'})"
    options, wanted_options = recorded.get("options", {}), wanted["options"]
    differences = (record_differences(recorded, wanted, RECORD_LABELS, RECORD_LABELS)
                   + record_differences(options, wanted_options, sorted(set(options) | set(wanted_options))))
    return f"inverted with {', and '.join(differences)}" if differences else None


def tensors_intact(folder: Path, recorded: dict) -> bool:
    """Whether the artifact's tensors are still the bytes its record was written for."""
    try:
        return sha256(folder / TENSORS_FILE) == recorded.get("tensors_sha256")
    except OSError:
        return False


def file_sha256(path: Path) -> str:
    try:
        return sha256(path)
    except OSError as error:
        raise P2PError(f"{path}: cannot be read ({error.strerror or error})") from None
