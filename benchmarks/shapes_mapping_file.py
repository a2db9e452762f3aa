"""Write data/shapes/mapping_file.json: data/shapes' edits in PIE-Bench's format, with the edit masks
the scene generator knows (the object's visible part, with the new shape drawn in its place for a
shape swap, grown by 2 pixels at 64 px, at PIE-Bench's 512x512), so that `p2p-real bench edit` scores the
shapes model's edits outside the object.

    python benchmarks/shapes_mapping_file.py            # rewrites data/shapes/mapping_file.json
"""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from p2p_real.eval.pie_bench import MASK_SIZE
from p2p_real.shapes.scenes import SHAPES, render_scene, scene_at

SEED = 2024  # data/shapes' scenes (LICENSES.md)
# (file, scene index, word position, new word, PIE-Bench edit type: 6 change colour, 1 change object)
EDITS = [("circle.png", 3, 2, "red", "6"), ("star.png", 8, 3, "square", "1"), ("triangle.png", 29, 2, "blue", "6")]


def run_length(mask: np.ndarray) -> list[int]:
    """PIE-Bench's encoding: (start, length) pairs of 1s over the flattened mask, row-major."""
    flat = np.concatenate([[0], mask.flatten().astype(np.int8), [0]])
    changes = np.flatnonzero(np.diff(flat))
    starts, ends = changes[0::2], changes[1::2]
    return [int(value) for pair in zip(starts, ends - starts) for value in pair]


def main() -> None:
    folder = Path(__file__).resolve().parent.parent / "data" / "shapes"
    entries = {}
    for number, (file, index, position, word, edit_type) in enumerate(EDITS, start=1):
        scene = scene_at(SEED, index, 64, 1)
        words = scene.caption.split(" ")
        old = words[position]
        source = " ".join(f"[{w}]" if i == position else w for i, w in enumerate(words))
        target = " ".join(f"[{word}]" if i == position else w for i, w in enumerate(words))
        shape = words[3]
        region = scene.masks[0].copy()
        if word in SHAPES:
            region |= render_scene([replace(scene.objects[0], shape=word)], "plain", scene.background_colour,
                                   size=64).masks[0]
        grown = F.max_pool2d(torch.tensor(region, dtype=torch.float32)[None, None], 5, stride=1, padding=2)
        mask = F.interpolate(grown, size=(MASK_SIZE, MASK_SIZE), mode="nearest")[0, 0].numpy() > 0
        entries[f"{number:012d}"] = {
            "image_path": file, "original_prompt": source, "editing_prompt": target,
            "editing_instruction": f"Make the {old} {shape} {word}" if position == 2 else f"Make the {shape} a {word}",
            "editing_type_id": edit_type,
            "blended_word": f"{shape} {shape}" if position == 2 else "",  # colour swaps blend on the object's noun
            "mask": run_length(mask),
        }
    (folder / "mapping_file.json").write_text(json.dumps(entries, indent=1) + "\n")
    print(f"-> {folder / 'mapping_file.json'} ({len(entries)} edits)")


if __name__ == "__main__":
    main()
