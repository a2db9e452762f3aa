"""Errors meant for people: each says what was wrong, with which file or word, and what to do."""


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


class MetricLoadError(P2PError):
    """An evaluation metric's network (CLIP, DINO, LPIPS backbone) could not be found or loaded."""
