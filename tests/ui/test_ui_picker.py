"""What the picker offers: kept inversions (complete ones) and photos with their captions."""
import json
import shutil
from pathlib import Path

import pytest

from p2p_real.artifacts import FORMAT, FORMAT_VERSION
from p2p_real.errors import P2PError
from p2p_real.ui.picker import check_inputs, find_choices

SHAPES = Path(__file__).resolve().parents[2] / "data" / "shapes"


def kept_inversion(folder: Path, prompt: str, model: str = "shapes", fingerprint: str = "f00d") -> Path:
    """An artifact's record: all that the picker reads."""
    folder.mkdir(parents=True)
    (folder / "inversion.json").write_text(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION,
                                                       "prompt": prompt, "model_name": model,
                                                       "model_fingerprint": fingerprint}))
    return folder


def test_the_outputs_inversions_come_first_then_the_inputs(tmp_path):
    output = tmp_path / "out"
    circle = kept_inversion(output / "circle", "a large blue circle on a plain white background")
    (output / "cut-short").mkdir()  # a run killed before its record: not offered
    kept_inversion(output / "damaged", "x").joinpath("inversion.json").write_text("{")
    elsewhere = kept_inversion(tmp_path / "kept" / "star", "a large yellow star")
    choices = find_choices([SHAPES, tmp_path / "kept", circle], output)
    assert [choice.path for choice in choices] == [circle, *(SHAPES / name for name in ("circle.png", "star.png",
                                                                                        "triangle.png")), elsewhere]
    assert choices[0].label == f"inversion {circle} · shapes · a large blue circle on a plain white background"
    assert choices[1].label == f"photo {SHAPES / 'circle.png'} · a large blue circle on a plain white background"


def test_a_photo_without_caption_and_an_artifact_folder_named_alone(tmp_path):
    shutil.copy(SHAPES / "circle.png", tmp_path / "mine.png")
    caption = "a " + "very " * 30 + "long caption"
    artifact = kept_inversion(tmp_path / "kept", caption)
    choices = find_choices([tmp_path / "mine.png", artifact], tmp_path / "not-made-yet")
    assert choices[0].label.endswith("(no caption)")
    assert choices[1].path == artifact and choices[1].label.endswith(f" · {caption[:59]}…")


def test_an_input_with_nothing_to_pick_is_bad_input_at_start_up_and_offers_nothing_later(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(P2PError, match="empty: no photos .* or kept inversions here"):
        check_inputs([tmp_path / "empty"])
    check_inputs([SHAPES])
    assert find_choices([tmp_path / "empty", tmp_path / "gone"], tmp_path) == []


def test_each_inversion_names_its_model_and_one_of_another_says_it_cannot_be_edited_here(tmp_path):
    ours = kept_inversion(tmp_path / "out" / "circle", "a circle", "shapes", "f00d")
    theirs = kept_inversion(tmp_path / "out" / "star", "a star", "runwayml/stable-diffusion-v1-5", "beef")
    labels = [choice.label for choice in find_choices([], tmp_path / "out", "f00d")]
    assert labels == [f"inversion {ours} · shapes · a circle",
                      f"inversion {theirs} · runwayml/stable-diffusion-v1-5 (another model: not editable on this "
                      f"page) · a star"]
    assert [choice.label for choice in find_choices([], tmp_path / "out")][1].endswith("v1-5 · a star")  # no model
