"""The mask brush's value (Gradio's ImageEditor dict: background, layers, composite) made into the
file `--mask` takes: white where painted ("edit only here") or where not ("keep this"), at the
photo's size, named by its content beside the photo's edits, and read back by the CLI's reader."""
import hashlib

import numpy as np
import pytest
from PIL import Image

from p2p_real.errors import P2PError
from p2p_real.runs.masks import read_mask
from p2p_real.ui.brush import EDIT_HERE, KEEP_THIS, mask_image, painted_region, save_painted_mask


def strokes(size, boxes, opacity=153, rng=None) -> Image.Image:
    """An editor layer: transparent, with pink strokes of partial opacity in `boxes` (left, top, right, bottom)."""
    layer = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    for left, top, right, bottom in boxes:
        layer[top:bottom, left:right] = (255, 45, 120, opacity)
    if rng is not None:  # a soft edge: faint antialiased pixels still count as painted
        layer[0, 0] = (255, 45, 120, int(rng.integers(1, 40)))
    return Image.fromarray(layer, mode="RGBA")


def editor_value(background, layers):
    return {"background": background, "layers": layers, "composite": background}


def test_painted_strokes_are_read_from_every_layers_alpha():
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    value = editor_value(photo, [strokes((64, 48), [(4, 8, 20, 30)], rng=rng), strokes((64, 48), [(40, 2, 60, 10)])])
    painted = painted_region(value)
    expected = np.zeros((48, 64), dtype=bool)
    expected[8:30, 4:20] = expected[2:10, 40:60] = expected[0, 0] = True
    assert np.array_equal(painted, expected)
    assert painted_region(editor_value(photo, [strokes((64, 48), [])])) is None  # erased back to nothing
    assert painted_region(editor_value(photo, [])) is None and painted_region(None) is None


@pytest.mark.parametrize("region", [EDIT_HERE, KEEP_THIS])
def test_edit_only_here_paints_white_and_keep_this_paints_black(region):
    painted = np.zeros((40, 40), dtype=bool)
    painted[10:20, 5:25] = True
    mask = np.asarray(mask_image(painted, region, (80, 80)))  # the canvas at half the photo's size
    assert mask.shape == (80, 80) and set(np.unique(mask)) == {0, 255}
    inside, outside = mask[20:40, 10:50], np.delete(mask, np.s_[20:40], axis=0)
    assert (inside == (255 if region == EDIT_HERE else 0)).all()
    assert (outside == (0 if region == EDIT_HERE else 255)).all()
    with pytest.raises(P2PError, match="edit only here"):
        mask_image(painted, "everywhere", (40, 40))


def test_a_saved_painting_is_the_clis_mask_named_by_content(tmp_path):
    artifact, photo = tmp_path / "out" / "circle", tmp_path / "circle.png"
    artifact.mkdir(parents=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(photo)
    value = editor_value(Image.open(photo), [strokes((96, 64), [(30, 0, 60, 64)])])
    path = save_painted_mask(artifact, photo, value, EDIT_HERE)
    assert path.parent == artifact / "painted-masks" and path.suffix == ".png"
    assert "parameters" in Image.open(path).text and path.with_suffix(".json").is_file()
    mask = read_mask(path)  # as `--mask PATH` reads it
    assert tuple(mask.values.shape) == (64, 96) and mask.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert mask.values[:, 30:60].min() == 1 and mask.values[:, :30].max() == 0 and mask.values[:, 60:].max() == 0
    mask.check_lines_up(str(photo))
    assert save_painted_mask(artifact, photo, value, EDIT_HERE) == path  # the same painting: the same file
    assert save_painted_mask(artifact, photo, value, KEEP_THIS) != path
    assert save_painted_mask(artifact, photo, editor_value(None, []), EDIT_HERE) is None
