"""A sweep's scores: the mask its fidelity leaves out, and the shapes reader's edit score."""
import numpy as np
import torch

from p2p_real.eval.sweep_scores import common_mask
from p2p_real.runs.sweep_reading import shapes_reading
from p2p_real.shapes.scenes import SceneObject, render_scene


def test_the_common_mask_is_where_every_mask_covers():
    first = torch.zeros(1, 4, 4)
    first[0, :2] = 1  # top half
    second = torch.zeros(1, 4, 4)
    second[0, :, :2] = 1  # left half
    expected = np.zeros((4, 4), dtype=np.float32)
    expected[:2, :2] = 1
    np.testing.assert_array_equal(common_mask([first, second], (4, 4)), expected)


def test_without_masks_or_with_masks_over_everything_the_whole_picture_counts():
    assert not common_mask([None, None], (4, 4)).any()
    assert not common_mask([torch.ones(1, 4, 4), torch.ones(1, 4, 4)], (4, 4)).any()


def test_the_reader_scores_the_share_of_the_targets_colour_and_shape():
    scene = render_scene([SceneObject("circle", "red", "large", (32.0, 32.0), 15.0)], "plain", "white")
    picture = torch.from_numpy(np.array(scene.image))  # (H, W, 3) uint8
    reading = shapes_reading(picture, "a large red circle on a plain white background")
    assert reading == {"read_colour": "red", "read_shape": "circle", "shapes_score": 1.0}
    assert shapes_reading(picture, "a large blue circle on a plain white background")["shapes_score"] == 0.5
    assert shapes_reading(picture, "a large blue star on a plain white background")["shapes_score"] == 0.0
