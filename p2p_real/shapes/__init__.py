"""Synthetic captioned scenes of coloured shapes: the test bed of a future small text-to-image model."""
