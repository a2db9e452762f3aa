"""Mask files (`--mask`, an edits file's `mask:`): a painted mask read from disk, checked, and known
by its content, so that an edit's record says which mask made it wherever the file moves."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from ..artifacts import sha256
from ..editing.painted_mask import PAINTED_FRACTION, latent_region, painted_values
from ..errors import ImageError, OptionError
from ..images import open_image

EXIF_ORIENTATION = 0x0112
TURNED = (5, 6, 7, 8)  # orientations that swap width and height
SHAPE_TOLERANCE = 0.01  # of the aspect ratio: a mask scaled and rounded still lines up


@dataclass(frozen=True)
class MaskFile:
    path: Path
    sha256: str  # of the file's bytes
    values: torch.Tensor  # (H, W) float in [0, 1]: 1 = edit (white, or opaque where the image has transparency)

    def settings(self) -> dict:
        """What an edit's record says of its mask: the file for people, its content for resuming."""
        return {"mask": str(self.path), "mask_sha256": self.sha256}

    def check_covers(self, photo_size: tuple[int, int], latent_size: tuple[int, int]) -> None:
        """That some latent cell of this photo is more than half painted; an ImageError naming the file."""
        try:
            latent_region(self.values, photo_size, latent_size)
        except OptionError as error:
            raise ImageError(f"{self.path}: {error.problem}") from None


    def check_lines_up(self, photo: str) -> None:
        """That the mask has the shape of the photo it edits: each is cropped to its centred square, so
        a mask of another shape would cover another part of the photo than painted. The photo's shape
        is read from its file's header, when the file is still where the artifact says."""
        try:
            with Image.open(photo) as opened:
                width, height = opened.size
                if opened.getexif().get(EXIF_ORIENTATION) in TURNED:
                    width, height = height, width
        except (OSError, ValueError):
            return  # moved or gone: the artifact's picture is square already, and cannot tell
        mask_height, mask_width = self.values.shape
        if abs(mask_width * height - mask_height * width) > SHAPE_TOLERANCE * mask_height * width:
            raise ImageError(f"{self.path}: {mask_width}x{mask_height} pixels, not the shape of the photo {photo} "
                             f"({width}x{height}); each is cropped to its centred square, so they would not line up: "
                             f"paint the mask on the photo itself (any size of the same shape)")


def read_mask(path: str | Path) -> MaskFile:
    """The mask at `path`, decoded; an ImageError naming the file when it is missing, unreadable or
    all black (no pixel more than half white: nothing to edit)."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: a folder, not a mask image; give a PNG or JPEG, white where the edit may change "
                         f"the photo")
    image = open_image(path)
    try:
        values = painted_values(image)
    except (OSError, ValueError) as error:  # modes PIL cannot convert (LAB, ...)
        raise ImageError(f"{path}: cannot read its {image.mode} pixels as a mask ({error}); "
                         f"save it as a greyscale PNG") from None
    if not (values > PAINTED_FRACTION).any():
        raise ImageError(f"{path}: the mask is all black (no pixel more than half white, or half opaque where it has "
                         f"transparency), so nothing would be edited; paint the region to edit white (black keeps)")
    return MaskFile(path, sha256(path), values)
