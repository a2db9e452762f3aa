"""Many edits in one run: from an edits file (JSON or YAML) or a single command line; resumable.

An edits file lists, per edit, the photo (or an artifact folder), the target caption and options:

    edits:
      - photo: chelsea.jpg                       # relative to the edits file
        prompt: a close-up photo of a tabby cat  # optional: else captions.json / chelsea.txt
        target: a close-up photo of a tabby dog
        blend: [cat, dog]                        # optional LocalBlend words (source, target)
        reweight: {tabby: 2}                     # optional
        kind: auto                               # auto | replace | refine | reweight
        cross_replace_steps: 0.4                 # or [start, end], or {default_: 0.4, dog: [0, 0.8]}
        self_replace_steps: 0.6                  # or [start, end]
        name: cat-to-dog                         # optional output folder name

Photos without an artifact in OUTPUT/<photo>/ are inverted first (and kept); each edit goes to
OUTPUT/<photo>/<name>/ and is skipped when its edited.json already records the same settings.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..artifacts import load_inversion
from ..errors import P2PError
from ..images import grid, save_png, to_pil
from ..models import Model
from ..photos import Photo, caption_for
from .options import EditOptions

EDITS_FILES = ("edits.yaml", "edits.yml", "edits.json")


@dataclass(frozen=True)
class EditJob:
    source: Path  # a photo, or an artifact folder from `p2p-real invert`
    target: str
    options: EditOptions = EditOptions()
    prompt: str | None = None  # the photo's caption, when `source` is a photo
    name: str = ""  # output folder name; from the target when empty

    @property
    def photo_name(self) -> str:
        return self.source.name if self.source.is_dir() else self.source.stem

    @property
    def edit_name(self) -> str:
        return self.name or re.sub(r"[^a-z0-9]+", "-", self.target.lower()).strip("-")[:60] or "edit"


@dataclass
class EditReport:
    done: list[tuple[EditJob, Path]] = field(default_factory=list)
    skipped: list[EditJob] = field(default_factory=list)
    failed: list[tuple[EditJob, str]] = field(default_factory=list)
    seconds: float = 0.0


def read_edits_file(path: str | Path) -> list[EditJob]:
    """Parse an edits file; any mistake is a P2PError naming the file, the entry and the field."""
    path = Path(path)
    try:
        text = path.read_text()
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as error:  # JSON, YAML and I/O errors all mean: this file cannot be read
        raise P2PError(f"{path}: cannot read the edits file ({str(error).splitlines()[0]})") from None
    entries = data.get("edits") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise P2PError(f"{path}: expected a list of edits (or {{edits: [...]}})")
    return [parse_entry(entry, index, path) for index, entry in enumerate(entries, start=1)]


def parse_entry(entry, index: int, path: Path) -> EditJob:
    where = f"{path}, edit {index}"
    known = {"photo", "artifact", "prompt", "target", "blend", "reweight", "kind", "cross_replace_steps", "self_replace_steps", "name"}
    if not isinstance(entry, dict):
        raise P2PError(f"{where}: expected a mapping with photo and target")
    unknown = set(entry) - known
    if unknown:
        raise P2PError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    if "target" not in entry or not ("photo" in entry or "artifact" in entry):
        raise P2PError(f"{where}: needs a target and a photo (or an artifact folder)")
    source = path.parent / str(entry.get("photo") or entry.get("artifact"))
    prompt = entry.get("prompt") or (caption_for(source) if source.is_file() else None)
    blend = entry.get("blend")
    if blend is not None and (not isinstance(blend, (list, tuple)) or len(blend) != 2):
        raise P2PError(f"{where}: blend must be two words, [source word, target word]")
    cross = entry.get("cross_replace_steps", EditOptions.cross_replace_steps)
    if isinstance(cross, dict):
        cross = {word: tuple(window) if isinstance(window, list) else window for word, window in cross.items()}
    elif isinstance(cross, list):
        cross = tuple(cross)
    self_steps = entry.get("self_replace_steps", EditOptions.self_replace_steps)
    options = EditOptions(
        kind=str(entry.get("kind", "auto")),
        cross_replace_steps=cross,
        self_replace_steps=tuple(self_steps) if isinstance(self_steps, list) else self_steps,
        reweights={str(word): float(factor) for word, factor in (entry.get("reweight") or {}).items()},
        blend_words=tuple(map(str, blend)) if blend else None,
    )
    return EditJob(source, str(entry["target"]), options, prompt, str(entry.get("name") or ""))


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
    OUTPUT/<photo>/<edit name>/."""
    from ..inversion.job import invert_photos
    from .edit import edit
    from .pictures import token_maps

    started = time.perf_counter()
    output = Path(output)
    report = EditReport()
    photos = {job.source: Photo(job.source, job.prompt, job.photo_name) for job in jobs if job.source.is_file()}
    inverted = invert_photos(model, list(photos.values()), output, num_steps=num_steps, batch_size=batch_size,
                             progress=progress) if photos else None
    failed_photos = {photo.path: message for photo, message in (inverted.failed if inverted else [])}
    loaded: dict[Path, object] = {}  # artifact -> Inversion: read and hash-checked once, however many edits use it
    for job in tqdm(jobs, desc="editing", unit="edit", disable=not progress):
        folder = output / job.photo_name / job.edit_name
        if job.source in failed_photos:
            report.failed.append((job, failed_photos[job.source]))
            continue
        try:
            artifact = job.source if job.source.is_dir() else output / job.photo_name
            if artifact not in loaded:
                loaded[artifact] = load_inversion(artifact, model)
            inversion = loaded[artifact]
            if job.source.is_file() and job.prompt and job.prompt != inversion.prompt:
                # A kept artifact is reused only for the caption it was inverted with.
                raise P2PError(f"{artifact}: inverted with the prompt {inversion.prompt!r}, not {job.prompt!r}; "
                               f"delete that folder or use another --output to invert again")
            settings = edit_settings(job, inversion, model)
            if not force and recorded_settings(folder) == settings:
                report.skipped.append(job)
                continue
            result = edit(model, inversion, job.target, job.options, progress=progress)
        except P2PError as error:
            report.failed.append((job, str(error)))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        settings["resolved_kind"] = result.kind  # what `auto` chose
        save_png(to_pil(result.edited), folder / "edited.png", settings)
        pictures = [to_pil(result.source), to_pil(result.reconstruction), to_pil(result.edited)]
        save_png(grid(pictures, ["source", "reconstruction", job.target[:40]]), folder / "grid.png", settings)
        if maps:
            save_png(token_maps(result.cross_maps, 1, model.tokenizer, job.target, 64), folder / "maps.png", settings)
        report.done.append((job, folder))
    report.seconds = time.perf_counter() - started
    return report


def edit_settings(job: EditJob, inversion, model: Model) -> dict:
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
