"""The caption of a photo: from `captions.json` in the photo's folder (an object mapping file name
to caption), else from a text file beside the photo with the same stem (`cat.jpg` -> `cat.txt`);
commands fall back to `--prompt`. A caption that is not text, or is empty, counts as none. A caption
file that cannot be read (not UTF-8, unreadable) is a CaptionError naming it: for captions.json the
whole folder's (exit 2), for a photo's .txt that photo's alone (runs/photos.py)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import P2PError

CAPTIONS_FILE = "captions.json"


class CaptionError(P2PError):
    """A photo's own caption file (photo.txt) cannot be read: that photo fails, the others go on."""


def caption_for(path: Path) -> str | None:
    captions_file = path.parent / CAPTIONS_FILE
    if captions_file.is_file():
        try:
            captions = json.loads(captions_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise P2PError(f"{captions_file}: not valid JSON in UTF-8 ({error}); fix or remove it") from None
        except OSError as error:
            raise P2PError(f"{captions_file}: cannot be read ({error.strerror or error}); fix or remove it") from None
        if not isinstance(captions, dict):
            raise P2PError(f"{captions_file}: expected an object mapping file names to captions")
        caption = captions.get(path.name)
        if isinstance(caption, str) and caption.strip():  # null, a number or "" is no caption
            return caption.strip()
    text_file = path.with_suffix(".txt")
    if text_file.is_file():
        try:
            return text_file.read_text(encoding="utf-8").strip() or None
        except UnicodeDecodeError as error:
            raise CaptionError(f"{text_file}: the caption is not UTF-8 text ({error.reason} at byte {error.start}); "
                               f"save it as UTF-8") from None
        except OSError as error:
            raise CaptionError(f"{text_file}: the caption cannot be read ({error.strerror or error})") from None
    return None
