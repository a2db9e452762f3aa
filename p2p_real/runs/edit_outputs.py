"""An edit's files in OUTPUT/<photo>/<edit>/: written with the record last, and the record read back
and compared with the one a run would write."""
from __future__ import annotations

import json
from pathlib import Path

from ..editing.edit import EditResult
from ..editing.pictures import token_maps
from ..images import grid, save_png, to_pil
from .records import record_differences

# Side in pixels of each token's picture in maps.png: SD v1's 16x16 maps as 4x4 blocks, so that a
# row of a caption's tokens stays a readable width.
MAP_PICTURE_SIZE = 64
RECORD_FILE = "edited.json"  # edited.png's sidecar, the edit's record: written after every other file
EDIT_FILES = ("grid.png", "grid.json", "maps.png", "maps.json", "edited.png", RECORD_FILE)  # in the order written
NOT_COMPARED = ("mask",)  # the mask's path: mask_sha256 says which mask made an edit, wherever the file moved


def write_edit(result: EditResult, pending, tokenizer=None) -> None:
    """grid.png (source | reconstruction | edit), maps.png given a tokenizer, then edited.png and its
    sidecar, the record. What an earlier run left goes first, the record before all, so that a run
    killed on the way leaves the edit to redo and never a file of other settings beside a record."""
    folder, job = pending.folder, pending.job
    folder.mkdir(parents=True, exist_ok=True)
    for name in reversed(EDIT_FILES):
        (folder / name).unlink(missing_ok=True)
    settings = {**pending.settings, "resolved_kind": result.kind}  # what `auto` chose
    pictures = [to_pil(result.source), to_pil(result.reconstruction), to_pil(result.edited)]
    save_png(grid(pictures, ["source", "reconstruction", job.target]), folder / "grid.png", settings)
    if tokenizer is not None:
        maps = token_maps(result.cross_maps, 1, tokenizer, job.target, MAP_PICTURE_SIZE)
        save_png(maps, folder / "maps.png", settings)
    save_png(to_pil(result.edited), folder / "edited.png", settings)


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
    keys = [key for key in dict.fromkeys([*wanted, *recorded]) if key not in NOT_COMPARED]
    return ", ".join(record_differences(recorded, wanted, keys)) or None
