import numpy as np
import pytest

from p2p_real.shapes.check import follows_caption, parse_caption, read_object
from p2p_real.shapes.scenes import SceneObject, random_scene, render_scene


def test_the_reader_gets_generated_scenes_right():
    rng = np.random.default_rng(5)
    scenes = [random_scene(rng, size=64, max_objects=1) for _ in range(60)]
    results = [follows_caption(scene.image, scene.caption) for scene in scenes]
    colour_rate = np.mean([result["colour"] for result in results])
    shape_rate = np.mean([result["shape"] for result in results])
    assert colour_rate >= 0.98, colour_rate
    assert shape_rate >= 0.95, shape_rate


def test_the_reader_notices_a_wrong_caption():
    scene = render_scene([SceneObject("star", "red", "large", (32.0, 32.0), 20.0, 10.0)], "plain", "white")
    caption = "a large red star on a plain white background"
    assert follows_caption(scene.image, caption) == {"colour": True, "shape": True}
    assert follows_caption(scene.image, "a large blue star on a plain white background")["colour"] is False
    assert follows_caption(scene.image, "a large red circle on a plain white background")["shape"] is False
    reading = read_object(scene.image, "white")
    assert reading.overlap > 0.8 and abs(int(reading.mask.sum()) - int(scene.masks[0].sum())) < 40


def test_captions_with_more_than_one_object_are_refused():
    with pytest.raises(ValueError, match="one-object"):
        parse_caption("a large red circle and a small blue square on a plain white background")
