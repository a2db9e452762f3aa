"""The page's edit controls, as typed, read into `EditOptions` by the flag table the command line
reads its flags with (runs/edit_flags.py), so that a bad value gets the command line's message,
naming the flag."""
from __future__ import annotations

from dataclasses import dataclass

from ..editing.options import EditOptions
from ..errors import P2PError
from ..runs.edit_flags import edit_options
from .brush import EDIT_HERE


@dataclass(frozen=True)
class EditForm:
    target: str
    kind: str = "auto"
    blend_source_word: str = ""
    blend_target_word: str = ""
    reweights: str = ""  # "red=2 circle=0.5", as repeated --reweight flags
    cross_replace_steps: float = EditOptions.cross_replace_steps
    self_replace_steps: float = EditOptions.self_replace_steps
    word_steps: str = ""  # "red=0,0.8", as repeated --word-steps flags
    mask: str = ""  # an uploaded mask's file, as --mask; empty: none
    painting: dict | None = None  # the brush's strokes over the photo (ui/brush.py), made into a --mask file
    painted_region: str = EDIT_HERE  # what the strokes mark: the region to edit, or the one to keep
    blend_threshold: float = EditOptions.blend_threshold  # LocalBlend's cut (an edits file's blend_threshold)

    def options(self) -> EditOptions:
        """A P2PError (an OptionError for a bad value) of one line when the form cannot be used."""
        blend = [self.blend_source_word.strip(), self.blend_target_word.strip()]
        if any(blend) and not all(blend):
            raise P2PError("--blend: give two words, one of the caption and one of the target "
                           "(e.g. circle circle), or none")
        return edit_options({"kind": self.kind, "cross_replace_steps": float(self.cross_replace_steps),
                             "self_replace_steps": float(self.self_replace_steps),
                             "blend": blend if all(blend) else None,
                             "reweight": flag_values(self.reweights), "word_steps": flag_values(self.word_steps)},
                            fixed={"blend_threshold": float(self.blend_threshold)})


def flag_values(text: str) -> list[str]:
    """`red=2 circle=0.5` (or with semicolons, or commas, between entries) as ["red=2", "circle=0.5"]."""
    return [value.strip(",") for value in (text or "").replace(";", " ").split() if value.strip(",")]
