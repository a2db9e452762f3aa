"""SDXL through the command line, as a user runs it: invert, edit (flags and an edits file) and bench
with tiny-sdxl-random, the same artifacts and outputs as SD v1 (a missing SDXL model: tests/test_models.py)."""
import json
from pathlib import Path

from PIL import Image

from p2p_real.artifacts import load_inversion
from p2p_real.cli import main

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
FAST = ["--model", "tiny-sdxl-random", "--steps", "3", "--inner-steps", "2", "--quiet"]


def test_invert_edit_and_an_edits_file_end_to_end(tmp_path, capsys):
    assert main(["invert", str(DATA / "chelsea.jpg"), "--prompt", "a close-up photo of a tabby cat",
                 "--output", str(tmp_path / "inv"), *FAST]) == 0
    inversion = load_inversion(tmp_path / "inv" / "chelsea")
    assert inversion.null_text_embeddings.shape == (3, 78, 64)  # 77 token rows + the pooled row
    assert inversion.options["optimised_embedding"] == "tokens and pooled"
    assert Image.open(tmp_path / "inv" / "chelsea" / "reconstruction.png").text["parameters"].count(
        "tiny-sdxl-random") == 1
    capsys.readouterr()
    assert main(["invert", str(DATA / "chelsea.jpg"), "--prompt", "a close-up photo of a tabby cat",
                 "--output", str(tmp_path / "inv"), *FAST]) == 0  # resumes: the record matches what a rerun would make
    assert "1 already done" in capsys.readouterr().out
    argv = ["edit", str(tmp_path / "inv" / "chelsea"), "--target", "a close-up photo of a tabby dog",
            "--blend", "cat", "dog", "--output", str(tmp_path / "edits"), "--model", "tiny-sdxl-random", "--quiet",
            "--maps"]
    assert main(argv) == 0
    [folder] = (tmp_path / "edits" / "chelsea").glob("a-close-up-photo-of-a-tabby-dog*")
    assert Image.open(folder / "edited.png").size == (128, 128)
    assert Image.open(folder / "maps.png").size[0] == 9 * 64  # a picture per token ("close-up" is 3), from 4x4 maps
    assert json.loads((folder / "edited.json").read_text())["resolved_kind"] == "replace"
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"edits": [
        {"photo": str(tmp_path / "inv" / "chelsea"), "target": "a close-up photo of a fluffy tabby cat"},
        {"photo": str(tmp_path / "inv" / "chelsea"), "target": "a close-up photo of a tabby cat",
         "reweight": {"tabby": 2}},
    ]}))
    assert main(["edit", str(edits), "--output", str(tmp_path / "batch"), "--model", "tiny-sdxl-random",
                 "--quiet"]) == 0
    kinds = sorted(json.loads(path.read_text())["resolved_kind"] for path in (tmp_path / "batch").rglob("edited.json"))
    assert kinds == ["refine", "reweight"]


def test_bench_reconstruct_runs_every_method(tmp_path, capsys):
    argv = ["bench", "reconstruct", str(DATA), "--output", str(tmp_path), "--model", "tiny-sdxl-random",
            "--steps", "2", "--metric-weights", "random", "--quiet"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    for method in ("ddim", "negative-prompt", "direct", "null-text"):
        assert method in table
    report = json.loads((tmp_path / "reconstruct.json").read_text())
    assert len(report["rows"]) == 4 * 4 and report["summary"]["null-text"]["count"] == 4
    assert report["summary"]["direct"]["latent_mse"] < 1e-6 * report["summary"]["ddim"]["latent_mse"]

