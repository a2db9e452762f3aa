"""Names of output folders: pure functions, so that the same inputs always name the same folder.

Every name is one safe folder name (ASCII letters, digits, '.', '_' and '-'; no leading dot or
dash; never empty, '.' or '..'), and `inside` joins names under --output only:

- a photo's folder is its stem; where another photo of its folder has the same stem, the stem plus
  its extension (`cat-jpg`, `cat-png`); where that is taken too, plus a short hash of the file name.
  These depend only on the photo and its folder's photos, so they stay the same from run to run.
  Photos of one run from different folders that would still share a name get a hash of their path.
- an edit's folder is a readable slug of its target plus a short hash of every setting that changes
  its pixels (`a-tabby-dog-3f9a1c2e`), so two edits share a folder only when they are the same edit;
- a name the user gives (`--name`, `name:`) is kept, made safe; a path is refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections import Counter
from pathlib import Path, PurePath

from ..errors import P2PError

HASH_LENGTH = 8  # hex digits: 4e9 values, so distinct settings of one photo never meet in practice
MAX_NAME_LENGTH = 80  # well inside any file system's 255 bytes, with room for a hash and a suffix
MAX_SLUG_LENGTH = 48
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def short_hash(value) -> str:
    """HASH_LENGTH hex digits of SHA-256 over `value` as canonical JSON (keys sorted)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def sanitize(text: str, fallback: str) -> str:
    """`text` as one safe folder name: accents dropped, other characters as '-'; `fallback` when
    nothing is left (emoji, another script, only dots)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = UNSAFE.sub("-", ascii_text).lstrip(".-")[:MAX_NAME_LENGTH].rstrip("-")
    return name if name not in ("", ".", "..") else fallback


def slug(text: str) -> str:
    """A short lower-case reminder of `text` (`a close-up photo of a dog` -> `a-close-up-photo-of-a-dog`)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:MAX_SLUG_LENGTH].rstrip("-") or "edit"


def edit_folder_name(target: str, pixel_settings: dict) -> str:
    """The slug of the target and a hash of everything that changes the edit's pixels (the target
    among them, so targets of the same slug, such as emoji, still get distinct folders)."""
    return f"{slug(target)}-{short_hash({**pixel_settings, 'target': target})}"


def given_name(name: str) -> str:
    """A user's folder name for an edit, made safe; a path (separators, '..', absolute) is refused."""
    parts = re.split(r"[\\/]", name)
    if len(parts) > 1 or name in (".", "..") or PurePath(name).is_absolute():
        raise P2PError(f"the edit name {name!r} is a path; give a plain folder name (letters, digits, '.', '_', '-'), "
                       f"which goes inside OUTPUT/<photo>/")
    return sanitize(name, f"edit-{short_hash(name)}")


def names_in_folder(file_names: list[str]) -> dict[str, str]:
    """Each photo of one folder -> its output folder name, distinct within the folder (case-blind,
    as some file systems are): the stem, else stem-extension, else that plus a hash of the name."""
    def stem(name: str) -> str:
        return sanitize(PurePath(name).stem, "photo")

    stems = Counter(stem(name).casefold() for name in file_names)
    first = {}
    for name in file_names:
        extension = PurePath(name).suffix.lstrip(".").lower()
        alone = stems[stem(name).casefold()] == 1
        first[name] = stem(name) if alone else sanitize(f"{stem(name)}-{extension}", "photo")
    taken = Counter(choice.casefold() for choice in first.values())
    return {name: choice if taken[choice.casefold()] == 1 else f"{choice}-{short_hash(name)}"
            for name, choice in first.items()}


def distinct(names: list[str], keys: list[str]) -> list[str]:
    """`names` made distinct (case-blind) within one run: a name that several items share gets a
    hash of each item's key (e.g. a photo's full path)."""
    counts = Counter(name.casefold() for name in names)
    return [name if counts[name.casefold()] == 1 else f"{name}-{short_hash(key)}" for name, key in zip(names, keys)]


def inside(output: Path, *names: str) -> Path:
    """OUTPUT/name/...: each name must be one plain folder name, and the path stays inside OUTPUT."""
    root = os.path.normpath(os.path.abspath(output))
    path = os.path.normpath(os.path.join(root, *names))
    plain = all(name not in ("", ".", "..") and not re.search(r"[\\/]", name) for name in names)
    if not plain or path == root or os.path.commonpath([root, path]) != root:
        raise P2PError(f"{'/'.join(names)!r} would leave the output folder {output}; "
                       f"this is a bug in p2p-real, please report it")
    return Path(output).joinpath(*names)


def usable_folder(output: Path, folder: Path) -> Path:
    """`folder`, a folder this run writes in OUTPUT, checked on the disk: refused when a file stands
    where it should be, or when it (or a folder above it) is a link that leads outside OUTPUT."""
    real_root, real = os.path.realpath(output), os.path.realpath(folder)
    if os.path.commonpath([real_root, real]) != real_root:
        raise P2PError(f"{folder}: a link to {real}, outside the output folder {output}; p2p-real writes only inside "
                       f"--output: remove the link, or use another --output")
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise P2PError(f"{folder}: a file stands where this output folder should be; move it away, "
                       f"or use another --output")
    return folder


def file_system_problem(error: OSError, path: Path) -> str:
    """An error of the file system on the way to `path`, in one line naming the file it concerns."""
    return (f"{error.filename or path}: {error.strerror or error}; fix the folder's permissions or make room, "
            f"and run again")
