"""Messages shown in the page's Markdown as typed."""
from __future__ import annotations

import re


def as_markdown(text: str) -> str:
    """Text shown as typed: file names and fields (self_replace_steps, *.png) are not Markdown."""
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~-])", r"\\\1", text)
