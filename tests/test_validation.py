"""Everything checked up front (issue 15): a bad flag, path or output folder is one line naming it and
exit 2, before the model loads; the Python API refuses bad arguments in its own terms."""
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from p2p_real.artifacts import load_inversion
from p2p_real.cli import main
from p2p_real.editing.edit import edit
from p2p_real.editing.options import EditOptions
from p2p_real.errors import OptionError
from p2p_real.images import load_image
from p2p_real.pipeline import invert

DATA = Path(__file__).parent.parent / "data" / "photos"
PHOTO = str(DATA / "chelsea.jpg")
EDIT = ["edit", PHOTO, "--prompt", "a tabby cat", "--target", "a tabby dog"]
INVERT = ["invert", PHOTO, "--prompt", "a tabby cat"]
FAST = ["--model", "tiny-random", "--steps", "2", "--quiet"]


def one_error_line(capsys, needle: str) -> str:
    error = capsys.readouterr().err
    assert error.startswith("p2p-real: error: ") and needle in error, error
    assert len(error.strip().splitlines()) == 1, error
    return error


@pytest.mark.parametrize("argv, needle", [
    ([*EDIT, "--cross-replace-steps", "5"], "--cross-replace-steps: expected a fraction of the steps in [0, 1]"),
    ([*EDIT, "--word-steps", "dog=0.8,0.2"], "--word-steps dog: the window starts after it ends"),
    ([*EDIT, "--word-steps", "dog=0,1.5"], "--word-steps dog: expected a fraction"),
    ([*EDIT, "--word-steps", "=0,0.5"], "--word-steps '=0,0.5': expected WORD=START,END"),
    ([*EDIT, "--self-replace-steps", "-1"], "--self-replace-steps: expected a fraction"),
    ([*EDIT, "--reweight", "tabby=nan"], "--reweight tabby: expected a finite number"),
    ([*EDIT, "--reweight", "tabby=3"], "--reweight tabby: must be in [-2, 2]"),
    ([*EDIT, "--blend", "", "dog"], "--blend: expected two words"),
    ([*EDIT, "--target", " "], "--target: empty"),
    ([*INVERT, "--steps", "0"], "--steps: must be at least 1"),
    ([*INVERT, "--batch-size", "0"], "--batch-size: must be at least 1"),
    ([*INVERT, "--gpus", "0"], "--gpus: must be at least 1"),
    ([*INVERT, "--device", "foo"], "--device 'foo': not a device; use cpu, cuda, cuda:N"),
    ([*INVERT, "--guidance", "nan"], "--guidance: expected a finite number, got nan"),
    ([*INVERT, "--inner-steps", "-1"], "--inner-steps: expected a whole number of Adam steps"),
    ([*INVERT, "--learning-rate", "0"], "--learning-rate: must be above 0"),
    ([*INVERT, "--early-stop", "inf"], "--early-stop: expected a finite number"),
    ([*INVERT, "--prompt", ""], "--prompt: empty"),
    (["bench", "reconstruct", str(DATA), "--methods", "magic"], "--methods: unknown magic"),
])
def test_a_bad_flag_is_one_line_and_exit_2(argv, needle, tmp_path, capsys):
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    one_error_line(capsys, needle)
    assert not (tmp_path / "out").exists()  # the output check made nothing that stays


def test_an_output_that_is_a_file_or_cannot_be_made_is_refused(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    assert main([*INVERT, "--output", str(taken), *FAST]) == 2
    one_error_line(capsys, f"--output {taken}: a file, not a folder")
    assert main([*INVERT, "--output", str(taken / "below"), *FAST]) == 2
    one_error_line(capsys, f"--output {taken / 'below'}: cannot write there")


def test_a_missing_path_exits_2_without_importing_torch(tmp_path):
    missing = tmp_path / "missing.jpg"
    script = ("import sys; from p2p_real.cli import main; "
              f"code = main(['invert', {str(missing)!r}, '--output', {str(tmp_path / 'out')!r}]); "
              "print(code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["2", "False"]
    assert result.stderr.strip() == f"p2p-real: error: {missing}: no such file or folder"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_asked_for_without_a_gpu_is_refused_before_the_model_loads(tmp_path, capsys):
    assert main([*INVERT, "--output", str(tmp_path), "--device", "cuda:1", *FAST]) == 2
    one_error_line(capsys, "--device: no CUDA GPU is available here, so not 'cuda:1'; use another device, or cpu")


def test_steps_beyond_the_models_schedule_name_the_flag(tmp_path, capsys):
    assert main([*INVERT, "--output", str(tmp_path), "--model", "tiny-random", "--steps", "5000", "--quiet"]) == 2
    one_error_line(capsys, "--steps: expected a whole number of sampling steps from 1 to 1000, got 5000")


def test_a_null_caption_is_no_caption_and_the_other_photos_run(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("ok.jpg", "fine.jpg", "numbered.jpg"):
        shutil.copy(DATA / "coffee.jpg", folder / name)
    captions = {"ok.jpg": None, "fine.jpg": "a cup of coffee", "numbered.jpg": 5}
    (folder / "captions.json").write_text(json.dumps(captions))
    assert main(["invert", str(folder), "--output", str(tmp_path / "out"), "--method", "ddim", *FAST]) == 1
    captured = capsys.readouterr()
    assert "ok.jpg: no caption" in captured.err and "numbered.jpg: no caption" in captured.err
    assert "inverted 1 photo(s)" in captured.out
    assert load_inversion(tmp_path / "out" / "fine").prompt == "a cup of coffee"
    (folder / "captions.json").write_text(json.dumps(["not", "an", "object"]))
    assert main(["invert", str(folder), "--output", str(tmp_path / "out"), *FAST]) == 2
    one_error_line(capsys, "captions.json: expected an object")


def test_editing_an_artifact_uses_the_model_it_records(tmp_path, capsys):
    assert main([*INVERT, "--output", str(tmp_path), "--method", "ddim", *FAST]) == 0
    # No --model: the artifact's own (tiny-random), not the hub's SD v1.4, which is not here offline.
    assert main(["edit", str(tmp_path / "chelsea"), "--target", "a tabby dog", "--output", str(tmp_path),
                 "--quiet"]) == 0
    [record] = (tmp_path / "chelsea").glob("*/edited.json")
    assert json.loads(record.read_text())["model"] == "tiny-random"


# ---- the Python API: its own terms, no flags ---------------------------------------------------------


@pytest.fixture(scope="module")
def inversion(tiny_model):
    photo = load_image(DATA / "chelsea.jpg", tiny_model.resolution)
    [inverted] = invert(tiny_model, [photo], ["a tabby cat"], "ddim", 2)
    return inverted


def refused(call, field: str, needle: str) -> str:
    with pytest.raises(OptionError) as caught:
        call()
    message = str(caught.value)
    assert caught.value.field == field and needle in message and "--" not in message, message
    assert isinstance(caught.value, ValueError)
    return message


def test_invert_refuses_bad_arguments_in_the_apis_terms(tiny_model):
    photo = load_image(DATA / "chelsea.jpg", tiny_model.resolution)
    wrong_size = Image.open(DATA / "chelsea.jpg").convert("RGB")
    refused(lambda: invert(tiny_model, [wrong_size], ["a cat"]), "images", "load_image(path, model.resolution)")
    refused(lambda: invert(tiny_model, [photo.convert("L")], ["a cat"]), "images", "a L image of 128x128")
    refused(lambda: invert(tiny_model, [photo], "a cat"), "prompts", "expected a non-empty list")
    refused(lambda: invert(tiny_model, [photo], ["a cat", "a dog"]), "prompts", "expected a list of 1")
    refused(lambda: invert(tiny_model, [photo], [""]), "prompts", "prompts[0] is ''")
    refused(lambda: invert(tiny_model, [photo], ["a cat"], num_steps=0), "num_steps", "from 1 to 1000, got 0")
    refused(lambda: invert(tiny_model, [photo], ["a cat"], guidance_scale=math.nan), "guidance_scale", "finite")
    refused(lambda: invert(tiny_model, [photo], ["a cat"], method="magic"), "method", "null-text")


def test_edit_refuses_bad_targets_and_options(tiny_model, inversion):
    refused(lambda: edit(tiny_model, inversion, ""), "targets", "non-empty")
    refused(lambda: edit(tiny_model, inversion, ["a tabby dog", None]), "targets", "non-empty")
    refused(lambda: edit(tiny_model, inversion, "a tabby dog", [EditOptions()] * 2), "options",
            "give one for all or one each")
    refused(lambda: edit(tiny_model, inversion, "a tabby dog", {"kind": "replace"}), "options",
            "expected an EditOptions")
    refused(lambda: EditOptions(blend_words="cat"), "blend_words", "got 'cat'")
    refused(lambda: EditOptions(reweights={"tabby": math.nan}), "reweights", "finite")
