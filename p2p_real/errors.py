"""Errors meant for people: each says what was wrong, with which file or word, and what to do; and
the small checks of API arguments that raise `OptionError`."""
from __future__ import annotations

import math
import numbers


class P2PError(Exception):
    """Base class: the CLI prints the message on one line and exits 2 (bad input or usage)."""


class ImageError(P2PError):
    """A photo could not be read or is unusable."""


class ModelLoadError(P2PError):
    """A model's weights could not be found or loaded."""


class ArtifactError(P2PError):
    """An inversion artifact is missing, damaged, or belongs to another model."""


class PromptError(P2PError):
    """A prompt cannot be used as given (too long, word not in it, ...)."""


class NumericalError(P2PError):
    """A computation overflowed (NaN or inf), e.g. a VAE in float16 that needs float32."""


class MetricLoadError(P2PError):
    """An evaluation metric's network (CLIP, DINO, LPIPS backbone) could not be found or loaded."""


class OptionError(P2PError, ValueError):
    """An argument or option with a value that cannot be used. `field` names it in the Python API's
    terms (num_steps, cross_replace_steps, ...), `word` the word of a per-word field when there is
    one, and `problem` says what was wrong and what is expected, so that a caller that knows the
    field by another name (a command-line flag, a field of a file) can say it in its own terms."""

    def __init__(self, field: str, problem: str, word: str | None = None):
        super().__init__(f"{field}{'' if word is None else f' of {word!r}'}: {problem}")
        self.field, self.problem, self.word = field, problem, word


def is_number(value) -> bool:
    """A real number, finite or not; booleans are not numbers here."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(field: str, value, low: float = -math.inf, high: float = math.inf, word: str | None = None,
                 above_low: bool = False) -> None:
    """Refuse anything but a finite real number in [low, high] (in (low, high] when `above_low`)."""
    if not is_number(value) or not math.isfinite(value):
        raise OptionError(field, f"expected a finite number, got {value!r}", word)
    if value < low or (above_low and value == low) or value > high:
        if high < math.inf:
            expected = f"in {'(' if above_low else '['}{low:g}, {high:g}]"
        else:
            expected = f"{'above' if above_low else 'at least'} {low:g}"
        raise OptionError(field, f"must be {expected}, got {value!r}", word)


def check_text(field: str, value, what: str = "text") -> None:
    """Refuse anything but a string with more than white space in it."""
    if not isinstance(value, str) or not value.strip():
        raise OptionError(field, f"expected {what} (a non-empty string), got {value!r}")
