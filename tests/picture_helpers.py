"""Checks that a picture written by p2p_real.images.grid shows each caption whole: drawn again from the
caption's full text, wrapped, the strip under a cell must match it pixel for pixel."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from p2p_real.images import CAPTION_MARGIN, caption_font, caption_line_height, wrap_caption


def assert_caption_whole(picture: Image.Image, cells: int, index: int, caption: str) -> None:
    """Cell `index` of a row of `cells` square pictures shows all of `caption`, each line inside the cell."""
    cell_width = picture.width // cells
    assert picture.width == cell_width * cells
    font = caption_font()
    lines = wrap_caption(caption, font, cell_width - 2 * CAPTION_MARGIN)
    assert "".join(lines).replace(" ", "") == caption.replace(" ", ""), lines  # no character dropped
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for line in lines:  # each line fits its cell, margins included: nothing runs off at the right
        left, _, right, _ = measure.textbbox((CAPTION_MARGIN, 0), line, font=font)
        assert left >= 0 and right <= cell_width - CAPTION_MARGIN, (line, right, cell_width)
    strip_height = picture.height - cell_width  # the rows under the square pictures
    line_height = caption_line_height(font)
    assert strip_height >= len(lines) * line_height + CAPTION_MARGIN, "the caption strip is too short for its lines"
    expected = Image.new("RGB", (cell_width, strip_height), "white")
    draw = ImageDraw.Draw(expected)
    for number, line in enumerate(lines):
        draw.text((CAPTION_MARGIN, CAPTION_MARGIN + number * line_height), line, fill="black", font=font)
    shown = picture.crop((index * cell_width, cell_width, (index + 1) * cell_width, picture.height))
    assert np.array_equal(np.asarray(shown), np.asarray(expected)), f"cell {index}'s caption is not {caption!r} whole"
