import json
from pathlib import Path

import numpy as np
from PIL import Image

from p2p_real.runs.pie_bench import read_mapping_file
from p2p_real.shapes.scenes import scene_at

DATA = Path(__file__).resolve().parents[2] / "data" / "shapes"
INDICES = {"circle.png": 3, "star.png": 8, "triangle.png": 29}  # seed 2024 (data/LICENSES.md)


def test_the_example_scenes_are_the_generators_with_its_captions():
    captions = json.loads((DATA / "captions.json").read_text())
    for name, index in INDICES.items():
        scene = scene_at(2024, index, 64, 1)
        assert captions[name] == scene.caption
        assert np.array_equal(np.asarray(Image.open(DATA / name).convert("RGB")), np.asarray(scene.image))


def test_the_mapping_files_masks_cover_each_object_and_little_else():
    captions = json.loads((DATA / "captions.json").read_text())
    for entry in read_mapping_file(DATA / "mapping_file.json"):
        name = entry.image.name
        scene = scene_at(2024, INDICES[name], 64, 1)
        assert entry.source_prompt == captions[name]
        mask = entry.mask[4::8, 4::8] > 0  # 512 -> 64, at pixel centres
        assert mask[scene.masks[0]].all()
        inside = (slice(1, -1), slice(1, -1))  # PIE-Bench sets the one-pixel border of every mask
        assert mask[inside].mean() < 3 * scene.masks[0][inside].mean()
