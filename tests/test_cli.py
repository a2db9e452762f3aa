import json
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from p2p_real.artifacts import load_inversion
from p2p_real.cli import main

DATA = Path(__file__).parent.parent / "data" / "photos"
FAST = ["--model", "tiny-random", "--steps", "3", "--inner-steps", "2", "--quiet"]


def test_invert_a_folder_end_to_end_then_resume(tmp_path, capsys):
    assert main(["invert", str(DATA), "--output", str(tmp_path), "--batch-size", "2", *FAST]) == 0
    summary = capsys.readouterr().out
    assert "inverted 4 photo(s)" in summary and "0 failed" in summary
    # 2 Adam steps on random weights never reach the paper's early-stop loss: the summary says so, by photo
    assert "null-text stayed above the early-stop loss at some timesteps" in summary and "chelsea (3/3)" in summary
    captions = json.loads((DATA / "captions.json").read_text())
    for photo, caption in captions.items():
        folder = tmp_path / Path(photo).stem
        inversion = load_inversion(folder)
        assert inversion.prompt == caption and inversion.num_steps == 3
        assert inversion.null_text_embeddings.shape == (3, 77, 32)
        assert {"psnr", "ssim", "latent_mse"} <= set(inversion.metrics)
        parameters = Image.open(folder / "reconstruction.png").text["parameters"]
        assert parameters.startswith(caption) and "Steps: 3" in parameters and "Model: tiny-random" in parameters
        assert json.loads((folder / "reconstruction.json").read_text())["method"] == "null-text"
    before = (tmp_path / "chelsea" / "inversion.json").stat().st_mtime_ns
    assert main(["invert", str(DATA), "--output", str(tmp_path), *FAST]) == 0
    assert "inverted 0 photo(s) in" in (again := capsys.readouterr().out) and "4 already done" in again
    assert (tmp_path / "chelsea" / "inversion.json").stat().st_mtime_ns == before
    assert main(["invert", str(DATA / "chelsea.jpg"), "--prompt", "a cat", "--output", str(tmp_path), "--force",
                 *FAST]) == 0
    assert load_inversion(tmp_path / "chelsea").prompt == "a cat"


def test_a_bad_photo_in_a_folder_is_skipped_and_the_rest_done(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(DATA / "coffee.jpg", folder)
    (folder / "broken.jpg").write_text("not an image")
    (folder / "coffee.txt").write_text("a cup of coffee")
    (folder / "broken.txt").write_text("a broken file")
    (folder / "uncaptioned.png").write_bytes((DATA / "coffee.jpg").read_bytes())
    code = main(["invert", str(folder), "--output", str(tmp_path / "out"), *FAST])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.jpg" in captured.err and "uncaptioned.png: no caption" in captured.err
    assert "inverted 1 photo(s)" in captured.out and "2 failed" in captured.out
    assert load_inversion(tmp_path / "out" / "coffee").prompt == "a cup of coffee"


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    fake = tmp_path / "not_a_photo.jpg"
    fake.write_text("not an image")
    uncaptioned = tmp_path / "lonely.jpg"
    shutil.copy(DATA / "chelsea.jpg", uncaptioned)
    cases = [
        ["invert", str(fake), "--prompt", "x", "--output", str(tmp_path / "o"), "--model", "tiny-random"],
        ["invert", str(uncaptioned), "--output", str(tmp_path / "o"), "--model", "tiny-random"],
        ["invert", str(tmp_path / "missing.jpg"), "--prompt", "x", "--output", str(tmp_path / "o")],
        ["invert", str(DATA / "chelsea.jpg"), "--prompt", "x", "--output", str(tmp_path / "o"),
         "--model", "./no/such/model"],
        ["invert", str(DATA / "chelsea.jpg"), "--prompt", "word " * 100, "--output", str(tmp_path / "o"),
         "--model", "tiny-random", "--quiet"],
        ["invert", str(DATA / "chelsea.jpg"), "--prompt", "x", "--output", str(tmp_path / "o"),
         "--model", "tiny-random", "--device", "cpu", "--compile"],
    ]
    expected = ["not_a_photo.jpg", "no caption", "missing.jpg", "no/such/model", "tokens long",
                "--compile: compiling the UNet needs a CUDA device"]
    for argv, needle in zip(cases, expected):
        assert main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.startswith("p2p-real: error:") and needle in error, error
        assert len(error.strip().splitlines()) == 1, error


def test_the_installed_command_prints_no_traceback(tmp_path):
    fake = tmp_path / "not_a_photo.jpg"
    fake.write_text("not an image")
    argv = ["invert", str(fake), "--prompt", "x", "--output", str(tmp_path / "o"), "--model", "tiny-random"]
    result = subprocess.run([sys.executable, "-m", "p2p_real.cli", *argv], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"p2p-real: error: {fake}: not a readable image "
                                     f"(expected JPEG, PNG, WebP, BMP or TIFF)")


def test_edit_an_artifact_and_a_photo_end_to_end(tmp_path, capsys):
    assert main(["invert", str(DATA / "coffee.jpg"), "--prompt", "a cup of coffee on a red saucer",
                 "--output", str(tmp_path / "inv"), *FAST]) == 0
    target = "a cup of tea on a red saucer"
    argv = ["edit", str(tmp_path / "inv" / "coffee"), "--target", target, "--blend", "coffee", "tea",
            "--output", str(tmp_path / "edits"), "--model", "tiny-random", "--quiet", "--maps"]
    assert main(argv) == 0
    [folder] = (tmp_path / "edits" / "coffee").glob("a-cup-of-tea-on-a-red-saucer*")  # runs/naming.py may add a hash
    assert Image.open(folder / "maps.png").size[0] == 8 * 64  # a picture per token of the 8 one-token words
    edited = Image.open(folder / "edited.png")
    assert edited.size == (128, 128) and edited.text["parameters"].startswith(target)
    assert Image.open(folder / "grid.png").size[0] == 2 * 3 * 128  # enlarged twice, to be seen (at least 512)
    settings = json.loads((folder / "edited.json").read_text())
    assert settings["resolved_kind"] == "replace" and settings["blend_words"] == ["coffee", "tea"]
    # A photo with --prompt is inverted first, and its artifact is kept beside the edit.
    argv = ["edit", str(DATA / "rocket.jpg"), "--prompt", "a rocket on a launch pad", "--target",
            "a fluffy rocket on a launch pad", "--steps", "3", "--output", str(tmp_path / "e2"),
            "--model", "tiny-random", "--quiet"]
    assert main(argv) == 0
    assert load_inversion(tmp_path / "e2" / "rocket").prompt == "a rocket on a launch pad"
    [record] = (tmp_path / "e2" / "rocket").glob("a-fluffy-rocket-on-a-launch-pad*/edited.json")
    assert json.loads(record.read_text())["resolved_kind"] == "refine"
    # The kept artifact is not silently reused for another caption of the same photo.
    capsys.readouterr()
    other = [*argv[:3], "a rocket at night", *argv[4:]]
    assert main(other) == 2
    assert "inverted with the prompt 'a rocket on a launch pad', not 'a rocket at night'" in capsys.readouterr().err
    capsys.readouterr()
    bad = ["edit", str(tmp_path / "inv" / "coffee"), "--target", target, "--blend", "coffee", "horse",
           "--output", str(tmp_path / "edits"), "--model", "tiny-random", "--quiet"]
    assert main(bad) == 2
    assert "the word 'horse' is not in the prompt" in capsys.readouterr().err
    swap = ["edit", str(tmp_path / "inv" / "coffee"), "--target", "a big cup", "--kind", "replace",
            "--output", str(tmp_path / "edits"), "--model", "tiny-random", "--quiet"]
    assert main(swap) == 2
    assert "same number of words" in capsys.readouterr().err


def test_the_smoke_model_defaults_to_ten_steps(tmp_path, capsys):
    argv = ["invert", str(DATA / "rocket.jpg"), "--prompt", "a rocket", "--output", str(tmp_path),
            "--model", "tiny-random", "--inner-steps", "0", "--quiet"]
    assert main(argv) == 0
    assert load_inversion(tmp_path / "rocket").num_steps == 10
    assert main([*argv, "--steps", "4", "--force"]) == 0
    assert load_inversion(tmp_path / "rocket").num_steps == 4
