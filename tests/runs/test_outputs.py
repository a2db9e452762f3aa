"""Issue 15's examples of outputs lost, overwritten, written outside --output or trusted blindly: each
now works, or gives one line and its exit code."""
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from p2p_real.artifacts import METADATA_FILE, load_inversion
from p2p_real.cli import main
from p2p_real.editing.options import EditOptions
from p2p_real.runs import edit_outputs
from p2p_real.runs.edits import run_edits
from p2p_real.runs.edits_file import EditJob
from p2p_real.runs.invert import InversionSettings, invert_photos
from p2p_real.runs.photos import Photo

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
FAST = ["--model", "tiny-random", "--steps", "2", "--quiet"]
CAPTION = "a close-up photo of a tabby cat"
DOG = "a close-up photo of a tabby dog"


@pytest.fixture
def artifact(tmp_path):
    """chelsea.jpg inverted by the CLI (ddim: fast) into tmp_path/inv/chelsea."""
    assert main(["invert", str(DATA / "chelsea.jpg"), "--prompt", CAPTION, "--method", "ddim",
                 "--output", str(tmp_path / "inv"), *FAST]) == 0
    return tmp_path / "inv" / "chelsea"


def test_the_readme_swap_and_its_blend_variant_get_two_folders_and_later_maps(artifact, tmp_path, capsys):
    swap = ["edit", str(artifact), "--target", DOG, "--output", str(tmp_path / "out"), *FAST]
    assert main(swap) == 0 and main([*swap, "--blend", "cat", "dog"]) == 0
    folders = sorted((tmp_path / "out" / "chelsea").glob("a-close-up-photo-of-a-tabby-dog-*"))
    assert len(folders) == 2
    blends = {json.loads((folder / "edited.json").read_text())["blend_words"] is None for folder in folders}
    assert blends == {True, False}
    capsys.readouterr()
    assert main([*swap, "--maps"]) == 0  # done, but without maps: done again, with them
    assert "1 edit(s)" in capsys.readouterr().out
    assert len(list((tmp_path / "out" / "chelsea").glob("*/maps.png"))) == 1
    assert main([*swap, "--maps"]) == 0
    assert "0 edit(s)" in (out := capsys.readouterr().out) and "1 already done" in out


def test_emoji_targets_and_duplicate_names_never_overwrite(artifact, tmp_path, capsys):
    edits = tmp_path / "edits.yaml"
    edits.write_text(
        f"edits:\n"
        f"  - {{artifact: inv/chelsea, target: 'a close-up photo of a tabby 🐶'}}\n"
        f"  - {{artifact: inv/chelsea, target: 'a close-up photo of a tabby 🐱'}}\n"
        f"  - {{artifact: inv/chelsea, target: '{DOG}', name: same}}\n"
        f"  - {{artifact: inv/chelsea, target: 'a close-up photo of a fluffy tabby cat', name: same}}\n"
        f"  - {{artifact: inv/chelsea, target: '{DOG}', name: same}}\n"
    )
    assert main(["edit", str(edits), "--output", str(tmp_path / "out"), *FAST]) == 1
    captured = capsys.readouterr()
    assert "3 edit(s)" in captured.out and "1 already done" in captured.out and "1 failed" in captured.out
    assert "same: an earlier edit of this run writes there, with prompt" in captured.err
    assert len(list((tmp_path / "out" / "chelsea").glob("a-close-up-photo-of-a-tabby-*/edited.png"))) == 2
    assert json.loads((tmp_path / "out" / "chelsea" / "same" / "edited.json").read_text())["prompt"] == DOG


def test_photos_named_alike_get_three_artifacts_stable_from_run_to_run(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for source, name in (("chelsea.jpg", "cat.png"), ("coffee.jpg", "cat-png.png"), ("rocket.jpg", "cat.jpg")):
        Image.open(DATA / source).save(folder / name)
    argv = ["invert", str(folder), "--prompt", "a photo", "--method", "ddim", "--output", str(tmp_path / "out"), *FAST]
    assert main(argv) == 0
    assert "inverted 3 photo(s)" in capsys.readouterr().out
    artifacts = {load_inversion(path.parent).source_path for path in (tmp_path / "out").glob(f"*/{METADATA_FILE}")}
    assert artifacts == {str(folder / name) for name in ("cat.png", "cat-png.png", "cat.jpg")}
    assert main(argv) == 0
    assert "inverted 0 photo(s)" in (again := capsys.readouterr().out) and "3 already done" in again
    assert main([*argv[:1], str(folder / "cat-png.png"), *argv[2:]]) == 0  # alone: the same folder as before
    assert "1 already done" in capsys.readouterr().out


def test_names_that_are_paths_never_leave_the_output(artifact, tmp_path, capsys):
    outside = tmp_path / "escaped"
    for name in (f"../../{outside.name}", str(outside)):
        argv = ["edit", str(artifact), "--target", DOG, "--name", name, "--output", str(tmp_path / "out" / "x"), *FAST]
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert error.startswith("p2p-real: error:") and "is a path; give a plain folder name" in error
        assert len(error.strip().splitlines()) == 1
    (tmp_path / "edits.yaml").write_text(f"- {{artifact: inv/chelsea, target: '{DOG}', name: ../../{outside.name}}}\n"
                                         f"- {{artifact: inv/chelsea, target: '{DOG}', name: fine}}\n")
    assert main(["edit", str(tmp_path / "edits.yaml"), "--output", str(tmp_path / "out" / "x"), *FAST]) == 1
    assert "is a path" in capsys.readouterr().err
    assert not outside.exists() and (tmp_path / "out" / "x" / "chelsea" / "fine" / "edited.png").is_file()


def test_an_artifact_made_otherwise_is_refused_then_replaced_with_force(tmp_path, capsys):
    argv = ["invert", str(DATA / "coffee.jpg"), "--prompt", "a cup of coffee", "--method", "ddim",
            "--output", str(tmp_path), "--model", "tiny-random", "--quiet"]
    assert main([*argv, "--steps", "2"]) == 0
    before = (tmp_path / "coffee" / METADATA_FILE).read_text()
    assert main([*argv, "--steps", "3"]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path / 'coffee'}: inverted with steps 2, not 3; pass --force to replace it" in error
    assert (tmp_path / "coffee" / METADATA_FILE).read_text() == before  # neither relabelled nor replaced
    assert main([*argv, "--steps", "3", "--method", "direct"]) == 2
    assert "the method 'ddim', not 'direct', and steps 2, not 3" in capsys.readouterr().err
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(DATA / "rocket.jpg", tmp_path / "elsewhere" / "coffee.jpg")  # another photo of the same name
    assert main([*argv[:1], str(tmp_path / "elsewhere" / "coffee.jpg"), *argv[2:], "--steps", "2"]) == 2
    assert f"inverted from another photo ({DATA / 'coffee.jpg'})" in capsys.readouterr().err
    # An artifact of an older p2p-real (no photo hash): the same, and --force replaces it
    record = json.loads(before)
    del record["source_sha256"]
    (tmp_path / "coffee" / METADATA_FILE).write_text(json.dumps(record))
    assert main([*argv, "--steps", "2"]) == 2
    assert "inverted by an older p2p-real" in capsys.readouterr().err
    assert main([*argv, "--steps", "3", "--force"]) == 0
    assert load_inversion(tmp_path / "coffee").num_steps == 3


def test_a_killed_edit_is_redone(tiny_model, tmp_path, monkeypatch):
    photo = Photo(DATA / "chelsea.jpg", CAPTION, "chelsea")
    assert not invert_photos(tiny_model, [photo], tmp_path, InversionSettings("ddim", 2), progress=False).failed
    job = EditJob(tmp_path / "chelsea", DOG, EditOptions())
    save_png = edit_outputs.save_png

    def killed_before_the_record(image, path, settings):
        if path.name == "edited.png":
            raise KeyboardInterrupt  # as if the run were stopped here
        save_png(image, path, settings)

    monkeypatch.setattr(edit_outputs, "save_png", killed_before_the_record)
    with pytest.raises(KeyboardInterrupt):
        run_edits(tiny_model, [job], tmp_path, progress=False)
    [folder] = (tmp_path / "chelsea").glob("a-close-up-photo-of-a-tabby-dog-*")
    assert (folder / "grid.png").is_file() and not (folder / "edited.json").exists()
    monkeypatch.setattr(edit_outputs, "save_png", save_png)
    assert [done for _, done in run_edits(tiny_model, [job], tmp_path, progress=False).done] == [folder]
    (folder / "grid.png").unlink()  # a file the record promises is missing: done again
    assert len(run_edits(tiny_model, [job], tmp_path, progress=False).done) == 1
    again = run_edits(tiny_model, [job], tmp_path, progress=False)
    assert again.skipped == [job] and not again.done
    assert not list(tmp_path.rglob("*.partial")) and not list(tmp_path.rglob("*.lock"))
