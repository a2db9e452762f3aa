import json
import math
import string
import subprocess
import sys
from itertools import combinations

import numpy as np
import pytest
from PIL import Image

from p2p_real.shapes.scenes import (
    BACKGROUNDS,
    COLOURS,
    SHAPES,
    SceneObject,
    generate,
    render_scene,
    save_dataset,
    scene_at,
)


def eroded(mask: np.ndarray) -> np.ndarray:
    """Pixels whose four neighbours are in the mask too: clear of anti-aliased edges."""
    padded = np.pad(mask, 1)
    return mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


def dilated(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1)
    grown = mask.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= padded[1 + dy : 1 + dy + mask.shape[0], 1 + dx : 1 + dx + mask.shape[1]]
    return grown


@pytest.fixture(scope="module")
def scenes():
    return list(generate(40, seed=11))


def test_same_seed_gives_identical_scenes_and_any_index_alone():
    first, second = list(generate(5, seed=3)), list(generate(5, seed=3))
    for one, other in zip(first, second):
        assert one.image.tobytes() == other.image.tobytes()
        assert one.caption == other.caption
        assert one.objects == other.objects
        assert np.array_equal(one.masks, other.masks)
    alone = scene_at(3, 4)
    assert alone.image.tobytes() == first[4].image.tobytes()
    assert alone.caption == first[4].caption
    other_seed = list(generate(5, seed=4))
    assert [scene.caption for scene in other_seed] != [scene.caption for scene in first]
    # no scene is shared, even shifted (as it would be with a generator seeded by seed + index)
    assert not {scene.image.tobytes() for scene in first} & {scene.image.tobytes() for scene in other_seed}


def test_redrawing_a_scene_from_its_fields_gives_the_same_image(scenes):
    scene = scenes[0]
    redrawn = render_scene(scene.objects, scene.background, scene.background_colour, pattern_seed=scene.pattern_seed)
    assert redrawn.image.tobytes() == scene.image.tobytes()


def test_captions_name_exactly_the_objects_in_order(scenes):
    for scene in scenes:
        caption = scene.caption
        assert caption.count(" and ") + 1 == len(scene.objects)
        assert caption.endswith(f"on a {scene.background} {scene.background_colour} background")
        assert not set(caption) & set(string.punctuation)
        assert caption == " ".join(caption.split())  # single spaces, so words are tokens
        phrases = caption.rsplit(" on a ", 1)[0].split(" and ")
        for phrase, item in zip(phrases, scene.objects):
            assert phrase == f"a {item.size} {item.colour} {item.shape}"
        colours = [item.colour for item in scene.objects]
        assert len(set(colours)) == len(colours) and scene.background_colour not in colours


def test_generated_scenes_cover_the_vocabulary(scenes):
    assert {item.shape for scene in scenes for item in scene.objects} == set(SHAPES)
    assert {scene.background for scene in scenes} == set(BACKGROUNDS)
    assert any(len(scene.objects) == 3 for scene in scenes) and any(len(scene.objects) == 1 for scene in scenes)


def test_masks_are_disjoint_visible_and_hold_the_objects_colour(scenes):
    for scene in scenes:
        pixels = np.asarray(scene.image).astype(np.int64)
        assert scene.masks.shape == (len(scene.objects), 64, 64) and scene.masks.dtype == bool
        assert scene.masks.sum(axis=0).max() <= 1
        for mask, item in zip(scene.masks, scene.objects):
            interior = eroded(mask)
            assert interior.any(), scene.caption
            mean = pixels[interior].mean(axis=0)
            assert np.abs(mean - COLOURS[item.colour]).max() < 40, (scene.caption, item, mean)


def test_pixels_away_from_objects_are_the_plain_background():
    objects = [SceneObject("star", "blue", "large", (20.0, 22.0), 14.0, 10.0),
               SceneObject("triangle", "yellow", "small", (45.0, 44.0), 7.0, -20.0)]
    scene = render_scene(objects, "plain", "green")
    clear = ~dilated(dilated(scene.masks.any(axis=0)))  # clear of thin star tips too
    assert clear.sum() > 1000
    assert np.abs(np.asarray(scene.image)[clear].astype(int) - COLOURS["green"]).max() <= 2


def test_later_objects_occlude_earlier_ones():
    under = SceneObject("square", "red", "large", (28.0, 32.0), 14.0)
    over = SceneObject("circle", "blue", "large", (38.0, 32.0), 14.0)
    scene = render_scene([under, over], "plain", "white")
    alone = render_scene([under], "plain", "white")
    assert scene.masks[1].sum() == render_scene([over], "plain", "white").masks[0].sum()
    assert scene.masks[0].sum() < alone.masks[0].sum() - 100
    assert tuple(np.asarray(scene.image)[32, 33]) == COLOURS["blue"]


@pytest.mark.parametrize("shape", SHAPES)
def test_large_objects_cover_more_than_small_ones(shape):
    # the smallest large radius against the biggest small one, at the same rotation
    small = render_scene([SceneObject(shape, "red", "small", (32.0, 32.0), 0.12 * 64, 15.0)], "plain", "white")
    large = render_scene([SceneObject(shape, "red", "large", (32.0, 32.0), 0.20 * 64, 15.0)], "plain", "white")
    assert large.masks.sum() > 1.5 * small.masks.sum() > 0


def test_hand_made_red_circle():
    scene = render_scene([SceneObject("circle", "red", "large", (32.0, 32.0), 16.0)], "plain", "white")
    assert scene.caption == "a large red circle on a plain white background"
    assert abs(scene.masks[0].sum() - math.pi * 16**2) < 0.05 * math.pi * 16**2
    pixels = np.asarray(scene.image)
    assert tuple(pixels[32, 32]) == COLOURS["red"]
    assert tuple(pixels[0, 0]) == COLOURS["white"]
    # centred: the mask is symmetric about the image's centre
    assert np.array_equal(scene.masks[0], scene.masks[0][::-1, ::-1])


def test_unknown_words_are_named():
    with pytest.raises(ValueError, match="'hexagon'"):
        render_scene([SceneObject("hexagon", "red", "large", (32.0, 32.0), 10.0)], "plain", "white")
    with pytest.raises(ValueError, match="'wavy'"):
        render_scene([], "wavy", "white")


def test_save_dataset_writes_images_masks_and_captions(tmp_path):
    captions_path = save_dataset(tmp_path, count=4, seed=5)
    records = [json.loads(line) for line in captions_path.read_text().splitlines()]
    expected = list(generate(4, seed=5))
    assert len(records) == 4 and len(list(tmp_path.glob("*_masks.png"))) == 4
    assert len([path for path in tmp_path.glob("*.png") if not path.stem.endswith("_masks")]) == 4
    for record, scene in zip(records, expected):
        assert record["caption"] == scene.caption
        assert len(record["objects"]) == len(scene.objects)
        with Image.open(tmp_path / record["file"]) as image:
            assert image.tobytes() == scene.image.tobytes()
        with Image.open(tmp_path / record["masks"]) as masks:
            labels = np.asarray(masks)
        for label, mask in enumerate(scene.masks, start=1):
            assert np.array_equal(labels == label, mask)
    assert not list(tmp_path.glob("*.partial"))


def test_module_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "p2p_real.shapes.scenes", "--count", "3", "--seed", "2",
         "--output", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    lines = (tmp_path / "out" / "captions.jsonl").read_text().splitlines()
    assert [json.loads(line)["caption"] for line in lines] == [scene.caption for scene in generate(3, seed=2)]


def test_colours_are_far_apart():
    for (_, one), (_, other) in combinations(COLOURS.items(), 2):
        assert np.abs(np.subtract(one, other)).sum() > 100
