"""The work behind the page's buttons, as plain functions of what the page holds: pick, invert,
edit. Each goes through the runs layer, so that the page writes OUTPUT exactly as `p2p-real invert`
and `p2p-real edit --maps` do, reuses what either made with the same settings, and says a problem
in the command line's one line. Nothing here knows Gradio: the tests call these directly.
"""
from __future__ import annotations

import json
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import load_inversion, read_record
from ..defaults import DEFAULT_METHOD
from ..errors import ArtifactError, P2PError
from ..eval.scores import MetricModels
from ..models import Model
from ..runs.captions import caption_for
from ..runs.checks import in_flag_terms
from ..runs.edit_outputs import RECORD_FILE
from ..runs.edits import artifact_edit_folder, run_edits
from ..runs.edits_file import EditJob
from ..runs.invert import InversionSettings, file_sha256, invert_photos
from ..runs.naming import inside
from ..runs.photos import Photo, photo_names
from .brush import painted_region, save_painted_mask
from .edit_form import EditForm
from .picker import Choice, find_choices
from .sweeper import SweepForm, SweepView, run_page_sweep


@dataclass(frozen=True)
class InversionView:
    """What the page shows of an inversion, or of a picked photo not yet inverted; `failed`: only
    the message, and the page keeps what it showed."""

    message: str
    failed: bool = False
    artifact: str | None = None  # the artifact folder that the next edits start from
    photo: str | None = None  # a picked photo, for the upload box
    caption: str | None = None
    source: str | None = None  # source.png: the photo as the model sees it
    reconstruction: str | None = None  # reconstruction.png
    painting_photo: str | None = None  # the photo the mask brush paints over: the one inverted, as the CLI's --mask


@dataclass(frozen=True)
class EditView:
    message: str
    failed: bool = False
    edited: str | None = None  # edited.png
    maps: str | None = None  # maps.png: the edit's cross-attention per target token


@dataclass
class Workbench:
    """One app's model (loaded once; one job at a time runs on it), output folder and places to pick
    photos from. What each browser session is working on (its current inversion) is the page's."""

    model: Model
    output: Path
    inputs: list[Path] = field(default_factory=list)
    num_steps: int | None = None  # None: the model family's
    method: str = DEFAULT_METHOD
    metric_weights: str = "pretrained"  # the sweep's LPIPS and CLIP: "random" for offline smoke runs only
    model_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    loaded_metrics: dict = field(default_factory=dict, repr=False)  # the sweep's metric networks, loaded once

    def choices(self) -> list[Choice]:
        return find_choices(self.inputs, self.output, getattr(self.model, "fingerprint", None))

    def pick(self, choice: str | None) -> InversionView:
        """A kept inversion, ready to edit; or a photo with its caption, ready to invert."""
        try:
            if not choice:
                raise P2PError("nothing picked: choose a photo or a kept inversion from the list")
            path = Path(choice)
            if path.is_dir():
                # another model's or a damaged artifact is said now, not at the first edit
                self.check_model(path)
                load_inversion(path, self.model)
                return self.shown(path, "picked")
            caption = caption_for(path) or ""
            next_step = "check its caption, then invert it" if caption else "type its caption, then invert it"
            return InversionView(f"picked {path}: {next_step}", photo=str(path), caption=caption)
        except Exception as error:  # the page says it in one line, whatever it was
            return InversionView(failure_message(error), failed=True)

    def sweep(self, artifact: str | None, form: EditForm, grid: SweepForm) -> SweepView:
        """`p2p-real sweep` of the inversion to the form's target, its files as the command writes them."""
        try:
            return run_page_sweep(self, artifact, form, grid)
        except Exception as error:
            return SweepView(failure_message(error), failed=True)

    def metric_models(self, names: set[str]) -> MetricModels:
        """The sweep's metric networks (PIE-Bench's LPIPS on SqueezeNet), loaded at the first sweep."""
        key = frozenset(names)
        if key not in self.loaded_metrics:
            self.loaded_metrics[key] = MetricModels.load(set(names), self.metric_weights, self.model.device, "squeeze")
        return self.loaded_metrics[key]

    def check_model(self, artifact: Path) -> None:
        """A P2PError in the page's words for an inversion of another model: the page never loads
        another (a name on the hub would be a download), the user starts it with that one."""
        record = read_record(artifact) or {}
        made_with = record.get("model_fingerprint")
        if made_with and made_with != self.model.fingerprint:
            name = record.get("model_name") or made_with
            raise P2PError(f"{artifact}: this inversion was made with model {name!r}, not this page's "
                           f"{self.model.name!r}; start `p2p-real ui --model {name}` to edit it, or invert its photo "
                           f"again here")

    def invert(self, photo: str | None, caption: str | None, replace: bool = False,
               uploaded: bool = False) -> InversionView:
        """The photo into OUTPUT/<photo>/, named as `p2p-real invert` names it, or an `uploaded` one
        as <file name>-<8 hex digits of its bytes>: uploads share names (every pasted picture is
        image.png). A kept inversion of the same photo and settings is reused; one made otherwise is
        an error unless `replace` (--force)."""
        try:
            if not photo:
                raise P2PError("no photo: upload one, or pick one from the list")
            path, caption = Path(photo), (caption or "").strip()
            if not caption:
                raise P2PError(f"{path.name}: no caption; type what the photo shows")
            name = f"{path.stem}-{file_sha256(path)[:8]}" if uploaded else photo_names([path])[path]
            with self.model_lock:
                report = invert_photos(self.model, [Photo(path, caption, name)], self.output,
                                       InversionSettings(self.method, self.num_steps), force=replace,
                                       keep_matching=True, progress=True)
            if report.failed:
                raise P2PError(report.failed[0][1])
            if report.busy:
                raise P2PError(f"{path.name}: another run is inverting it into {self.output} now; "
                               "try again when it is done")
            done = (f"inverted in {report.seconds:.1f} s" if report.done
                    else "already inverted with these settings, reused")
            return self.shown(inside(self.output, name), done)
        except Exception as error:
            return InversionView(failure_message(error), failed=True)

    def edit(self, artifact: str | None, form: EditForm, redo: bool = False) -> EditView:
        """One edit of the inversion in `artifact` into OUTPUT/<photo>/<edit>/, as `p2p-real edit
        ARTIFACT --maps` makes it: an edit done with the same settings is reused unless `redo` (--force)."""
        try:
            if not artifact:
                raise P2PError("no inversion to edit: invert a photo, or pick a kept inversion")
            if not form.target.strip():
                raise P2PError("no target: type the edited caption")
            options, mask = form.options(), self.mask_file(Path(artifact), form)
            job = EditJob(Path(artifact), form.target.strip(), options, mask=mask)
            with self.model_lock:
                report = run_edits(self.model, [job], self.output, self.num_steps, force=redo, maps=True, progress=True)
            if report.failed:
                raise P2PError(report.failed[0][1])
            if report.busy:
                raise P2PError("another run is making this very edit now; try again when it is done")
            folder = report.done[0][1] if report.done else artifact_edit_folder(self.model, job, self.output)
            kind = json.loads((folder / RECORD_FILE).read_text()).get("resolved_kind")
            done = f"edited in {report.seconds:.1f} s" if report.done else "already edited with these settings, reused"
            return EditView(f"{done} ({kind}): {folder / 'edited.png'}", edited=str(folder / "edited.png"),
                            maps=str(folder / "maps.png"))
        except Exception as error:
            return EditView(failure_message(error), failed=True)

    def mask_file(self, artifact: Path, form: EditForm) -> Path | None:
        """The form's mask: the uploaded file, or the painting saved as one beside the photo's edits."""
        painted = painted_region(form.painting) is not None
        if form.mask and painted:
            raise P2PError("a mask is both painted and uploaded: clear the painting or the uploaded file")
        if form.mask:
            return Path(form.mask)
        record = read_record(artifact) or {}
        return save_painted_mask(artifact, Path(record.get("source_path") or artifact / "source.png"), form.painting,
                                 form.painted_region) if painted else None

    def shown(self, folder: Path, done: str) -> InversionView:
        record = read_record(folder)
        if record is None:
            raise ArtifactError(f"{folder}: not an inversion artifact (no inversion.json); invert the photo again")
        psnr = record.get("metrics", {}).get("psnr")
        quality = f", reconstruction PSNR {psnr:.1f} dB" if psnr is not None else ""
        photo = record.get("source_path") or ""
        return InversionView(f"{done}: {folder}{quality}. Now type a target caption and edit.", artifact=str(folder),
                             caption=record["prompt"], source=str(folder / "source.png"),
                             reconstruction=str(folder / "reconstruction.png"),
                             painting_photo=photo if Path(photo).is_file() else str(folder / "source.png"))


def failure_message(error: Exception) -> str:
    """A P2PError's one line, as the command line says it (a field named by its flag); anything else
    is a bug: one line for the page, the traceback for the terminal the server runs in."""
    if isinstance(error, P2PError):
        return in_flag_terms(error)
    traceback.print_exception(error)
    return f"internal error: {type(error).__name__}: {error}"
