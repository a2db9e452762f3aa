"""The caption of a photo: from `captions.json` in the photo's folder (an object mapping file name
to caption), else from a text file beside the photo with the same stem (`cat.jpg` -> `cat.txt`);
commands fall back to `--prompt`. A caption that is not text, or is empty, counts as none."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import P2PError

CAPTIONS_FILE = "captions.json"


def caption_for(path: Path) -> str | None:
    captions_file = path.parent / CAPTIONS_FILE
    if captions_file.is_file():
        try:
            captions = json.loads(captions_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise P2PError(f"{captions_file}: not valid JSON ({error})") from None
        if not isinstance(captions, dict):
            raise P2PError(f"{captions_file}: expected an object mapping file names to captions")
        caption = captions.get(path.name)
        if isinstance(caption, str) and caption.strip():  # null, a number or "" is no caption
            return caption.strip()
    text_file = path.with_suffix(".txt")
    if text_file.is_file():
        return text_file.read_text().strip() or None
    return None
