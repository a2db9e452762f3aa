"""SD3 through the command line, as a user runs it: invert a folder with tiny-sd3-random (the family's
guidance default recorded), then edit with LocalBlend words; bench reconstruct through the same seams."""
import json
from pathlib import Path

from PIL import Image

from p2p_real.artifacts import load_inversion
from p2p_real.cli import main
from p2p_real.pipeline import invert

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
FAST = ["--model", "tiny-sd3-random", "--steps", "2", "--inner-steps", "2", "--quiet"]


def test_invert_a_folder_then_edit_with_blend_words(tmp_path, capsys):
    assert main(["invert", str(DATA), "--output", str(tmp_path), *FAST]) == 0
    assert "inverted 4 photo(s)" in capsys.readouterr().out
    inversion = load_inversion(tmp_path / "chelsea")
    assert inversion.null_text_embeddings.shape == (2, 334, 96)  # 77 CLIP + 256 T5 rows + the pooled row
    assert inversion.guidance_scale == 7.0 and inversion.schedule["kind"] == "flow-match-euler"
    assert Image.open(tmp_path / "chelsea" / "reconstruction.png").text["parameters"].count("tiny-sd3-random") == 1
    argv = ["edit", str(tmp_path / "chelsea"), "--target", "a close-up photo of a tabby dog", "--blend", "cat", "dog",
            "--output", str(tmp_path), "--model", "tiny-sd3-random", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    [folder] = tmp_path.joinpath("chelsea").glob("a-close-up-photo-of-a-tabby-dog*")
    assert Image.open(folder / "edited.png").size == (128, 128)
    record = json.loads((folder / "edited.json").read_text())
    assert record["resolved_kind"] == "replace" and record["model"] == "tiny-sd3-random"


def test_the_family_defaults_are_the_pipelines(tiny_sd3_model):
    photo = Image.open(DATA / "chelsea.jpg").convert("RGB").resize((128, 128))
    [inversion] = invert(tiny_sd3_model, [photo], ["a close-up photo of a tabby cat"], method="negative-prompt")
    assert (inversion.num_steps, inversion.guidance_scale) == (28, 7.0)  # StableDiffusion3Pipeline's


def test_bench_reconstruct_runs_every_method(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "chelsea.jpg").write_bytes((DATA / "chelsea.jpg").read_bytes())
    (photos / "captions.json").write_text(json.dumps({"chelsea.jpg": "a close-up photo of a tabby cat"}))
    argv = ["bench", "reconstruct", str(photos), "--output", str(tmp_path / "bench"), "--metric-weights", "random",
            "--model", "tiny-sd3-random", "--steps", "2", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "bench" / "reconstruct.json").read_text())
    assert report["summary"]["direct"]["latent_mse"] < 1e-6 * report["summary"]["ddim"]["latent_mse"]
    assert report["summary"]["null-text"]["latent_mse"] < report["summary"]["ddim"]["latent_mse"]
