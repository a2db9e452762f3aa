"""Options of a Prompt-to-Prompt edit; defaults are PIE-Bench's P2P runner (Ju et al. 2024).

An `EditOptions` checks itself when made, so that a bad value fails at once with an `OptionError`
naming the field, not steps into sampling or as letters of a word read one by one.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import OptionError, check_number, is_number

EDIT_KINDS = ("auto", "replace", "refine", "reweight")
REWEIGHT_RANGE = (-2.0, 2.0)  # the paper's range of re-weighting factors c (Hertz et al. 2023, sec. 3.2)


@dataclass(frozen=True)
class EditOptions:
    kind: str = "auto"  # auto: replace when the word counts match, else refine; reweight: words only
    cross_replace_steps: float | tuple[float, float] | dict = 0.4  # fraction of steps, or per word
    self_replace_steps: float | tuple[float, float] = 0.6
    reweights: dict[str, float] = field(default_factory=dict)  # target word -> factor in [-2, 2]
    blend_words: tuple[str, str] | None = None  # (word in the source, word in the target)
    blend_start: float = 0.2  # LocalBlend from step int(0.2 T) on
    blend_threshold: float = 0.3

    def __post_init__(self) -> None:
        if self.kind not in EDIT_KINDS:
            raise OptionError("kind", f"expected one of {', '.join(EDIT_KINDS)}, got {self.kind!r}")
        check_cross_replace_steps(self.cross_replace_steps)
        check_window("self_replace_steps", self.self_replace_steps)
        check_reweights(self.reweights)
        check_blend_words(self.blend_words)
        check_number("blend_start", self.blend_start, 0, 1)
        check_number("blend_threshold", self.blend_threshold, 0, 1)


def check_window(name: str, window, word: str | None = None) -> None:
    """A fraction b of the steps (the window from 0 to b), or a window (start, end), 0 <= start <= end <= 1."""
    pair = isinstance(window, (tuple, list)) and len(window) == 2
    bounds = window if pair else [window]
    if not all(is_number(bound) and 0 <= bound <= 1 for bound in bounds):  # NaN fails the comparison too
        raise OptionError(name, f"expected a fraction of the steps in [0, 1], or a window (start, end) of two such "
                                f"fractions; got {window!r}", word)
    if pair and window[0] > window[1]:
        raise OptionError(name, f"the window starts after it ends ({window[0]} > {window[1]}); give the start first",
                          word)


def check_cross_replace_steps(windows) -> None:
    """One window for all tokens, or {"default_": window, word: window, ...}."""
    if not isinstance(windows, Mapping):
        check_window("cross_replace_steps", windows)
        return
    for word, window in windows.items():
        if not isinstance(word, str) or not word.strip():
            raise OptionError("cross_replace_steps", f"expected target words (and 'default_') as keys, got {word!r}")
        check_window("cross_replace_steps", window, word)


def check_reweights(reweights) -> None:
    if not isinstance(reweights, Mapping):
        raise OptionError("reweights", f"expected a mapping of target words to factors, e.g. {{'fluffy': 2.0}}, "
                                       f"got {reweights!r}")
    for word, factor in reweights.items():
        if not isinstance(word, str) or not word.strip():
            raise OptionError("reweights", f"expected target words as keys, e.g. {{'fluffy': 2.0}}, got {word!r}")
        check_number("reweights", factor, *REWEIGHT_RANGE, word=word)


def check_blend_words(words) -> None:
    """None, or two words; a string is refused rather than read as its letters."""
    if words is None:
        return
    if (not isinstance(words, (tuple, list)) or len(words) != 2
            or not all(isinstance(word, str) and word.strip() for word in words)):
        raise OptionError("blend_words", f"expected two words, one of the source prompt and one of the target, "
                                         f"e.g. ('cat', 'dog'); got {words!r}")
