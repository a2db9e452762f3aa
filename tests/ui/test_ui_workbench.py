"""The functions behind the page's buttons, called directly on the trained shapes model: they write
OUTPUT as the command line does, share its work both ways, and say bad input in its one line."""
import json
import shutil
from pathlib import Path

import pytest
from picture_helpers import assert_caption_whole
from PIL import Image

from p2p_real.cli import main
from p2p_real.loading import load_model
from p2p_real.ui.edit_form import EditForm
from p2p_real.ui.picker import find_choices
from p2p_real.ui.workbench import Workbench

SHAPES = Path(__file__).resolve().parents[2] / "data" / "shapes"
CAPTION = "a large blue circle on a plain white background"
RED = "a large red circle on a plain white background"
QUICK = ["--model", "shapes", "--quiet"]


@pytest.fixture(scope="module")
def shapes_model():
    return load_model("shapes", device="cpu")


@pytest.fixture(scope="module")
def inverted(shapes_model, tmp_path_factory):
    """A workbench whose output holds circle.png, inverted from the page (10 steps, as the CLI's default for shapes)."""
    workbench = Workbench(shapes_model, tmp_path_factory.mktemp("out"), [SHAPES], num_steps=10)
    return workbench, workbench.invert(str(SHAPES / "circle.png"), CAPTION)


def cli_error(capsys, argv) -> str:
    """The line `p2p-real` prints for bad input (after the model's loading chatter), less its prefix."""
    capsys.readouterr()
    assert main(argv) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("p2p-real: error: ")
    return line.removeprefix("p2p-real: error: ")


def test_an_inversion_is_the_clis_artifact_and_is_reused_by_page_and_cli(inverted, capsys):
    workbench, view = inverted
    folder = workbench.output / "circle"
    assert not view.failed and view.message.startswith("inverted in ") and "reconstruction PSNR" in view.message
    assert (view.artifact, view.caption) == (str(folder), CAPTION)
    assert (view.source, view.reconstruction) == (str(folder / "source.png"), str(folder / "reconstruction.png"))
    record = json.loads((folder / "inversion.json").read_text())
    assert (record["prompt"], record["method"], record["num_steps"], record["model_name"]) == (CAPTION, "null-text", 10,
                                                                                             "shapes")
    assert "parameters" in Image.open(folder / "reconstruction.png").text and (folder / "reconstruction.json").is_file()
    written = (folder / "inversion.json").stat().st_mtime_ns
    again = workbench.invert(str(SHAPES / "circle.png"), CAPTION)
    assert again.message.startswith("already inverted with these settings, reused: ") and again.artifact == str(folder)
    assert main(["invert", str(SHAPES / "circle.png"), "--prompt", CAPTION, "--output", str(workbench.output),
                 *QUICK]) == 0
    assert "1 already done" in capsys.readouterr().out
    assert (folder / "inversion.json").stat().st_mtime_ns == written


def test_an_edit_is_written_as_the_cli_writes_it_and_is_reused_by_page_and_cli(inverted, capsys):
    workbench, inversion = inverted
    view = workbench.edit(inversion.artifact, EditForm(RED, blend_source_word="circle", blend_target_word="circle"))
    assert not view.failed and view.message.startswith("edited in ") and "(replace)" in view.message
    folder = Path(view.edited).parent
    assert folder.parent == workbench.output / "circle" and view.maps == str(folder / "maps.png")
    assert {path.name for path in folder.iterdir()} == {"edited.png", "edited.json", "grid.png", "grid.json",
                                                        "maps.png", "maps.json"}
    settings = json.loads((folder / "edited.json").read_text())
    assert (settings["prompt"], settings["source_prompt"], settings["blend_words"]) == (RED, CAPTION,
                                                                                        ["circle", "circle"])
    assert Image.open(view.edited).text["parameters"].startswith(RED)
    picture = Image.open(folder / "grid.png").convert("RGB")  # the shapes model's 64-pixel pictures, enlarged
    assert picture.width >= 512 and picture.width % (3 * 64) == 0
    assert_caption_whole(picture, 3, 2, RED)
    assert Image.open(folder / "maps.png").width >= 512
    red, green, blue = Image.open(view.edited).convert("RGB").getpixel((32, 32))
    assert red > 150 and blue < 100  # a colour swap, as docs/SHAPES.md shows
    written = (folder / "edited.json").stat().st_mtime_ns
    again = workbench.edit(inversion.artifact, EditForm(RED, blend_source_word="circle", blend_target_word="circle"))
    assert again.message.startswith("already edited with these settings, reused (replace): ") \
        and again.edited == view.edited
    assert main(["edit", inversion.artifact, "--target", RED, "--blend", "circle", "circle", "--maps",
                 "--output", str(workbench.output), *QUICK]) == 0
    assert "0 edit(s)" in (out := capsys.readouterr().out) and "1 already done" in out
    assert (folder / "edited.json").stat().st_mtime_ns == written
    redone = workbench.edit(inversion.artifact, EditForm(RED, blend_source_word="circle", blend_target_word="circle"),
                            redo=True)
    assert redone.message.startswith("edited in ") and (folder / "edited.json").stat().st_mtime_ns != written


def test_bad_words_get_the_command_lines_one_line(inverted, capsys):
    workbench, inversion = inverted
    cli = ["edit", inversion.artifact, "--output", str(workbench.output), *QUICK]
    for form, flags in [
        (EditForm(RED, reweights="purple=2"), ["--target", RED, "--reweight", "purple=2"]),
        (EditForm(RED, blend_source_word="square", blend_target_word="circle"),
         ["--target", RED, "--blend", "square", "circle"]),
        (EditForm("a red circle", kind="replace"), ["--target", "a red circle", "--kind", "replace"]),
        (EditForm(RED, reweights="red=5"), ["--target", RED, "--reweight", "red=5"]),
    ]:
        view = workbench.edit(inversion.artifact, form)
        assert view.failed and view.edited is None
        assert view.message == cli_error(capsys, cli + flags)


def test_missing_input_is_said_in_one_line(inverted):
    workbench, inversion = inverted
    for view, expected in [
        (workbench.invert(str(SHAPES / "circle.png"), "  "), "circle.png: no caption; type what the photo shows"),
        (workbench.invert(None, CAPTION), "no photo: upload one, or pick one from the list"),
        (workbench.edit(None, EditForm(RED)), "no inversion to edit: invert a photo, or pick a kept inversion"),
        (workbench.edit(inversion.artifact, EditForm(" ")), "no target: type the edited caption"),
        (workbench.invert(str(SHAPES / "circle.png"), "a large green circle"),
         f"{workbench.output / 'circle'}: inverted with "
         f"the prompt {CAPTION!r}, not 'a large green circle'; pass --force to replace it, or use another --output"),
    ]:
        assert view.failed and view.message == expected


def test_inversions_the_cli_kept_appear_in_the_picker_and_open_for_editing(inverted, tmp_path, capsys):
    workbench, _ = inverted
    kept = tmp_path / "kept"
    assert main(["invert", str(SHAPES / "star.png"), "--prompt", "a large yellow star on a gradient red background",
                 "--method", "ddim", "--output", str(kept), *QUICK]) == 0
    shutil.copytree(kept / "star", workbench.output / "star")
    choices = {str(choice.path): choice.label for choice in workbench.choices()}
    star = str(workbench.output / "star")
    assert choices[star] == f"inversion {star} · shapes · a large yellow star on a gradient red background"
    assert str(SHAPES / "triangle.png") in choices
    view = workbench.pick(star)
    assert not view.failed and view.message.startswith(f"picked: {star}")
    assert (view.artifact, view.photo, view.caption) == (star, None, "a large yellow star on a gradient red background")
    photo = workbench.pick(str(SHAPES / "triangle.png"))
    assert (photo.photo, photo.caption, photo.artifact) == (str(SHAPES / "triangle.png"),
                                                            "a large yellow triangle on a plain green background", None)
    edited = workbench.edit(view.artifact, EditForm("a large yellow square on a gradient red background"))
    assert not edited.failed and Path(edited.edited).parent.parent == workbench.output / "star"


def test_an_inversion_of_another_model_is_said_when_picked(inverted, tmp_path):
    workbench, _ = inverted
    assert main(["invert", str(SHAPES / "circle.png"), "--prompt", CAPTION, "--output", str(tmp_path),
                 "--model", "tiny-random", "--steps", "2", "--method", "ddim", "--quiet"]) == 0
    view = workbench.pick(str(tmp_path / "circle"))
    assert view.failed and "this inversion was made with model 'tiny-random', not this page's 'shapes'" \
        in view.message and "p2p-real ui --model tiny-random" in view.message and "\n" not in view.message
    labels = {choice.path: choice.label for choice in find_choices([tmp_path], workbench.output,
                                                                   workbench.model.fingerprint)}
    assert labels[tmp_path / "circle"] == (f"inversion {tmp_path / 'circle'} · tiny-random (another model: not "
                                           f"editable on this page) · {CAPTION}")


def test_uploads_with_one_file_name_get_folders_of_their_own(inverted, tmp_path):
    # the page names every pasted picture image.png: two photos must not meet in one folder
    workbench, _ = inverted
    uploads = []
    for scene in ("circle", "star"):
        (tmp_path / scene).mkdir()
        uploads.append(tmp_path / scene / "image.png")
        uploads[-1].write_bytes((SHAPES / f"{scene}.png").read_bytes())
    captions = json.loads((SHAPES / "captions.json").read_text())
    views = [workbench.invert(str(upload), captions[f"{scene}.png"], uploaded=True)
             for upload, scene in zip(uploads, ("circle", "star"))]
    assert not any(view.failed for view in views), [view.message for view in views]
    folders = {Path(view.artifact) for view in views}
    assert len(folders) == 2 and all(folder.name.startswith("image-") for folder in folders), folders


def test_a_painted_mask_confines_the_edit_and_a_dark_one_is_one_line(inverted, tmp_path):
    # the page's mask field is the command line's --mask: recorded by content, the edit kept inside it
    import hashlib

    import numpy as np

    workbench, inversion = inverted
    left = np.zeros((64, 64), dtype=np.uint8)
    left[:, :32] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    view = workbench.edit(inversion.artifact, EditForm(RED, mask=str(tmp_path / "left.png")))
    assert not view.failed, view.message
    settings = json.loads((Path(view.edited).parent / "edited.json").read_text())
    assert settings["mask_sha256"] == hashlib.sha256((tmp_path / "left.png").read_bytes()).hexdigest()
    edited = Image.open(view.edited).convert("RGB")
    red, _, blue = edited.getpixel((25, 32))  # the circle's left part, inside the mask: red now
    assert red > 150 and blue < 100, (red, blue)
    red, _, blue = edited.getpixel((39, 32))  # its right part, outside: still the photo's blue
    assert blue > 150 and red < 100, (red, blue)
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(tmp_path / "dark.png")
    dark = workbench.edit(inversion.artifact, EditForm(RED, mask=str(tmp_path / "dark.png")))
    assert dark.failed and "dark.png" in dark.message and "\n" not in dark.message


def test_a_brush_painting_is_saved_beside_the_edits_and_confines_the_edit(inverted, tmp_path):
    # the page's brush: strokes over the photo, "keep this" on the circle's right half
    import hashlib

    import numpy as np

    workbench, inversion = inverted
    layer = np.zeros((64, 64, 4), dtype=np.uint8)
    layer[:, 32:] = (255, 45, 120, 153)  # the brush's pink at 60% opacity
    painting = {"background": Image.open(SHAPES / "circle.png"), "layers": [Image.fromarray(layer, mode="RGBA")],
                "composite": None}
    view = workbench.edit(inversion.artifact, EditForm(RED, painting=painting, painted_region="keep this"))
    assert not view.failed, view.message
    [mask] = (Path(inversion.artifact) / "painted-masks").glob("mask-*.png")
    settings = json.loads((Path(view.edited).parent / "edited.json").read_text())
    assert settings["mask"] == str(mask) and settings["mask_sha256"] == hashlib.sha256(mask.read_bytes()).hexdigest()
    assert np.asarray(Image.open(mask))[:, :32].min() == 255 and np.asarray(Image.open(mask))[:, 32:].max() == 0
    edited = Image.open(view.edited).convert("RGB")
    red, _, blue = edited.getpixel((25, 32))  # left of the circle, not kept: red now
    assert red > 150 and blue < 100, (red, blue)
    red, _, blue = edited.getpixel((39, 32))  # right of it, kept: the photo's blue
    assert blue > 150 and red < 100, (red, blue)
    (tmp_path / "up.png").write_bytes(mask.read_bytes())
    both = workbench.edit(inversion.artifact, EditForm(RED, mask=str(tmp_path / "up.png"), painting=painting))
    assert both.failed and "both painted and uploaded" in both.message


def test_a_sweep_from_the_page_writes_the_commands_files_and_offers_its_settings(inverted, tmp_path, capsys):
    from p2p_real.ui.sweeper import SweepForm, form_values

    workbench, inversion = inverted
    workbench.metric_weights = "random"  # LPIPS offline; the shapes model's edit score needs no network
    form = EditForm(RED, blend_source_word="circle", blend_target_word="circle")
    view = workbench.sweep(inversion.artifact, form, SweepForm("0.2,0.8", "0.2,0.8", "0.3,0.6"))
    assert not view.failed, view.message
    folder = Path(view.folder)
    assert folder.parent == Path(inversion.artifact) / "sweeps" and view.message.startswith("swept 9 setting(s) in ")
    assert {path.name for path in folder.iterdir()} == {"grid.png", "grid.json", "plot.png", "plot.json",
                                                        "sweep.json", "best.yaml", "edits"}
    record = json.loads((folder / "sweep.json").read_text())
    assert record["grid"] == {"cross_replace_steps": [0.2, 0.8], "self_replace_steps": [0.2, 0.8],
                              "blend_thresholds": [0.3, 0.6]}
    assert [(c.cross_replace_steps, c.self_replace_steps, c.blend_threshold) for c in view.settings] == [
        (row["cross_replace_steps"], row["self_replace_steps"], row["blend_threshold"]) for row in record["rows"]]
    chosen = view.settings[view.chosen]
    assert "(chosen" in chosen.label and record["chosen"]["cross_replace_steps"] == chosen.cross_replace_steps
    # the command line, given the same sweep, finds the page's and redoes it in place (same files)
    assert main(["sweep", inversion.artifact, "--target", RED, "--blend", "circle", "circle", "--cross", "0.2,0.8",
                 "--self", "0.2,0.8", "--thresholds", "0.3,0.6", "--metric-weights", "random",
                 "--output", str(folder), *QUICK]) == 0
    again = json.loads((folder / "sweep.json").read_text())
    assert [row["image"] for row in again["rows"]] == [row["image"] for row in record["rows"]]
    cross, self_replace, threshold = form_values(chosen, 0.3)
    used = workbench.edit(inversion.artifact, EditForm(RED, cross_replace_steps=cross, self_replace_steps=self_replace,
                                                       blend_source_word="circle", blend_target_word="circle",
                                                       blend_threshold=threshold))
    settings = json.loads((Path(used.edited).parent / "edited.json").read_text())
    assert (settings["cross_replace_steps"], settings["self_replace_steps"], settings["blend_threshold"]) == (
        chosen.cross_replace_steps, chosen.self_replace_steps, chosen.blend_threshold)
    bad = workbench.sweep(inversion.artifact, form, SweepForm("0.2,2", "0.5"))
    assert bad.failed and bad.message.startswith("--cross: 2 is not a fraction")
