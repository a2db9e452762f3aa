"""Painted masks through the command line and edits files: the record names the mask by path and
SHA-256, another mask's content makes an edit not done, and a bad mask is one line naming the file."""
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from p2p_real.cli import main
from p2p_real.runs.edits_file import read_edits_file
from p2p_real.runs.invert import InversionSettings, invert_photos
from p2p_real.runs.photos import Photo
from p2p_real.runs.pie_bench import read_bench_edits

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
SOURCE = "a close-up photo of a tabby cat"
DOG = "a close-up photo of a tabby dog"
FAST = ["--model", "tiny-random", "--quiet"]


@pytest.fixture(scope="module")
def artifact(tiny_model, tmp_path_factory):
    output = tmp_path_factory.mktemp("artifacts")
    report = invert_photos(tiny_model, [Photo(DATA / "chelsea.jpg", SOURCE, "chelsea")], output,
                           InversionSettings("ddim", 3), progress=False)
    assert not report.failed
    return output / "chelsea"


def write_mask(path: Path, seed: int, size: tuple[int, int] = (96, 96), mode: str = "L") -> Path:
    """Random painted blocks (white) on a dark random ground, of any size and mode (the photo's shape,
    square, unless a test says otherwise)."""
    rng = np.random.default_rng(seed)
    blocks = rng.random((6, 4)) < 0.5
    blocks[0, 0], blocks[-1, -1] = True, False  # both inside and outside, whatever the draw
    painted = np.kron(blocks, np.ones((size[1] // 6, size[0] // 4)))
    values = np.where(painted > 0, rng.uniform(0.8, 1.0, painted.shape), rng.uniform(0.0, 0.2, painted.shape))
    Image.fromarray((values * 255).round().astype(np.uint8)).convert(mode).save(path)
    return path


def record(folder: Path) -> dict:
    return json.loads((folder / "edited.json").read_text())


def test_an_edit_with_a_mask_records_it_and_redoes_for_another(artifact, tmp_path, capsys):
    mask = write_mask(tmp_path / "mask.png", seed=1)
    argv = ["edit", str(artifact), "--target", DOG, "--mask", str(mask), "--output", str(tmp_path / "out"), *FAST]
    assert main(argv) == 0
    [folder] = (tmp_path / "out" / "chelsea").glob("a-close-up-photo-of-a-tabby-dog-*")
    digest = hashlib.sha256(mask.read_bytes()).hexdigest()
    assert record(folder)["mask"] == str(mask) and record(folder)["mask_sha256"] == digest
    assert f"Mask sha256: {digest}" in Image.open(folder / "edited.png").text["parameters"]
    assert (folder / "grid.png").is_file()
    capsys.readouterr()
    moved = Path(shutil.copy(mask, tmp_path / "moved.png"))  # the same mask elsewhere: the same edit
    assert main([*argv[:5], str(moved), *argv[6:]]) == 0
    assert "0 edit(s)" in (out := capsys.readouterr().out) and "1 already done" in out
    write_mask(mask, seed=2)  # another painting: another edit, in its own folder
    assert main(argv) == 0
    assert "1 edit(s)" in capsys.readouterr().out
    folders = sorted((tmp_path / "out" / "chelsea").glob("a-close-up-photo-of-a-tabby-dog-*"))
    digests = {record(each)["mask_sha256"] for each in folders}
    assert len(folders) == 2 and digests == {digest, hashlib.sha256(mask.read_bytes()).hexdigest()}
    assert main(argv[:4] + argv[6:]) == 0  # no mask: a third edit, whose record has no mask at all
    [plain] = set((tmp_path / "out" / "chelsea").glob("a-close-up-photo-of-a-tabby-dog-*")) - set(folders)
    assert "mask" not in record(plain) and "mask_sha256" not in record(plain)


def test_a_named_edit_with_another_mask_is_refused_until_forced(artifact, tmp_path, capsys):
    mask = write_mask(tmp_path / "mask.png", seed=3, mode="RGB")
    argv = ["edit", str(artifact), "--target", DOG, "--mask", str(mask), "--name", "masked",
            "--output", str(tmp_path / "out"), *FAST]
    assert main(argv) == 0
    before = record(tmp_path / "out" / "chelsea" / "masked")["mask_sha256"]
    write_mask(mask, seed=4, mode="RGB")
    capsys.readouterr()
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--force" in error
    assert f"holds an edit made with mask_sha256 {before!r}, not" in error
    assert main([*argv, "--force"]) == 0
    digest = hashlib.sha256(mask.read_bytes()).hexdigest()
    assert record(tmp_path / "out" / "chelsea" / "masked")["mask_sha256"] == digest


def test_an_edits_file_mask_is_relative_to_the_file(tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "masks").mkdir(parents=True)
    shutil.copy(DATA / "chelsea.jpg", folder)
    mask = write_mask(folder / "masks" / "cat.png", seed=5, size=(120, 120))
    (folder / "edits.yaml").write_text(
        "edits:\n"
        f"  - {{photo: chelsea.jpg, prompt: {SOURCE}, target: {DOG}, mask: masks/cat.png, blend: [cat, dog], "
        f"name: masked}}\n"
        f"  - {{photo: chelsea.jpg, prompt: {SOURCE}, target: {DOG}, name: plain}}\n"
    )
    [masked, plain], problems = read_edits_file(folder / "edits.yaml")
    assert not problems and masked.mask == folder / "masks" / "cat.png" and plain.mask is None
    argv = ["edit", str(folder), "--output", str(tmp_path / "out"), "--steps", "2", *FAST]
    assert main(argv) == 0
    assert "2 edit(s)" in capsys.readouterr().out
    written = record(tmp_path / "out" / "chelsea" / "masked")
    assert written["mask"] == str(mask) and written["blend_words"] == ["cat", "dog"]
    assert written["mask_sha256"] == hashlib.sha256(mask.read_bytes()).hexdigest()
    assert "mask" not in record(tmp_path / "out" / "chelsea" / "plain")
    edits, problems = read_bench_edits(folder / "edits.yaml")  # the benchmark scores P2P as published: no masks
    assert [edit.key for edit in edits] == ["chelsea-plain"]
    assert "has a mask, which bench edit does not apply" in problems[0]


def bad_masks(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a bad mask file, what its error says)."""
    (folder / "text.png").write_text("not an image")
    Image.fromarray((np.random.default_rng(6).random((64, 64)) * 120).astype(np.uint8)).save(folder / "dark.png")
    dot = np.zeros((128, 128), np.uint8)
    dot[60:62, 60:62] = 255  # white, but 4 pixels: no 8x8 latent cell is half painted
    Image.fromarray(dot).save(folder / "dot.png")
    alpha = np.random.default_rng(7).integers(0, 100, (32, 32), dtype=np.uint8)
    transparent = np.dstack([np.full((32, 32, 3), 255, np.uint8), alpha])
    Image.fromarray(transparent, "RGBA").save(folder / "clear.png")  # white, but transparent: alpha says keep
    return {
        "missing": (folder / "missing.png", "no such file"),
        "text": (folder / "text.png", "not a readable image"),
        "dark": (folder / "dark.png", "the mask is all black (no pixel more than half white"),
        "clear": (folder / "clear.png", "the mask is all black"),
        "dot": (folder / "dot.png", "no latent cell (8x8 pixels of the photo) is more than half white"),
    }


@pytest.mark.parametrize("name", ["missing", "text", "dark", "clear", "dot"])
def test_a_bad_mask_is_one_line_naming_the_file_and_exit_2(artifact, tmp_path, capsys, name):
    mask, needle = bad_masks(tmp_path)[name]
    argv = ["edit", str(artifact), "--target", DOG, "--mask", str(mask), "--output", str(tmp_path / "out"), *FAST]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("p2p-real: error: ") and str(mask) in error and needle in error, error
    assert len(error.strip().splitlines()) == 1, error
    assert not list(tmp_path.glob("out/chelsea/*/edited.png"))


def test_bad_masks_in_an_edits_file_are_bad_entries(artifact, tmp_path, capsys):
    masks = bad_masks(tmp_path)
    good = write_mask(tmp_path / "good.png", seed=8)
    entries = [{"artifact": str(artifact), "target": DOG, "mask": str(path)} for path, _ in masks.values()]
    entries.append({"artifact": str(artifact), "target": DOG, "mask": good.name})
    (tmp_path / "edits.json").write_text(json.dumps(entries))
    _, problems = read_edits_file(tmp_path / "edits.json")
    assert len(problems) == 4  # the dot is readable and painted; only the photo's latent grid refuses it
    for number, (path, needle) in enumerate(list(masks.values())[:4], start=1):
        assert problems[number - 1].startswith(f"{tmp_path / 'edits.json'}, edit {number}, field mask: {path}: ")
        assert needle in problems[number - 1]
    assert main(["edit", str(tmp_path / "edits.json"), "--output", str(tmp_path / "out"), *FAST]) == 1
    captured = capsys.readouterr()
    assert "1 edit(s)" in captured.out and "1 failed, 4 bad entries skipped" in captured.out
    assert "Traceback" not in captured.err and f"{masks['dot'][0]}: no latent cell" in captured.err


def test_mask_flags_are_checked_before_torch_loads(tmp_path):
    """A missing --mask fails in checks.py, before torch is imported; --mask with an edits file is refused."""
    (tmp_path / "edits.yaml").write_text(f"- {{photo: x.jpg, target: {DOG}}}\n")
    code = ("import sys; from p2p_real.cli import main; "
            f"code = main(['edit', {str(DATA / 'chelsea.jpg')!r}, '--prompt', 'a cat', '--target', 'a dog', "
            f"'--mask', {str(tmp_path / 'nothing.png')!r}, '--output', {str(tmp_path / 'out')!r}]); "
            "print(code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["2", "False"], result
    assert result.stderr.strip() == (f"p2p-real: error: --mask {tmp_path / 'nothing.png'}: no such file; give a PNG or "
                                     f"JPEG, white where the edit may change the photo")
    mask = write_mask(tmp_path / "mask.png", seed=9)
    result = subprocess.run([sys.executable, "-m", "p2p_real.cli", "edit", str(tmp_path / "edits.yaml"),
                             "--mask", str(mask), "--output", str(tmp_path / "out"), *FAST], capture_output=True,
                            text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--mask: " in result.stderr and "set it in the file's entries" in result.stderr


def test_the_painted_region_of_a_file_is_what_edit_confines_to(artifact, tiny_model, tmp_path):
    """The runs layer hands edit() the file's values: the result's mask is the file's region."""
    from p2p_real.artifacts import load_inversion
    from p2p_real.editing.edit import edit
    from p2p_real.editing.painted_mask import latent_region
    from p2p_real.runs.masks import read_mask

    mask = read_mask(write_mask(tmp_path / "mask.png", seed=10, size=(200, 120), mode="LA"))
    inversion = load_inversion(artifact, tiny_model)
    result = edit(tiny_model, inversion, DOG, mask=mask.values)
    expected = latent_region(mask.values, (128, 128), (16, 16))
    assert torch.equal(result.mask[0], expected) and 0 < expected.mean() < 1
