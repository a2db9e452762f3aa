"""Issue 21: nothing lost, nothing trusted blindly, on the file system, in processes and in artifacts.
Each test runs the command as a user would and checks the one line and the exit code it promises."""
import os
import socket
import subprocess
import sys
from pathlib import Path

from p2p_real.cli import main

PHOTOS = Path(__file__).parents[2] / "data" / "photos"
SHAPES = Path(__file__).parents[2] / "data" / "shapes"


def run_command(*argv: str) -> subprocess.CompletedProcess:
    """The command in its own process, as a user runs it (the libraries' environment is the process's own)."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY")}
    command = [sys.executable, "-m", "p2p_real.cli", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=environment)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_good_quiet_run_prints_nothing_on_stderr(tmp_path):
    result = run_command("invert", str(SHAPES / "circle.png"), "--prompt", "a large blue circle on a white background",
                         "--model", "shapes", "--steps", "2", "-q", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_good_quiet_run_of_the_smoke_model_prints_nothing_on_stderr(tmp_path):
    result = run_command("invert", str(PHOTOS / "chelsea.jpg"), "--prompt", "a cat", "--model", "tiny-random",
                         "--steps", "2", "-q", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_broken_model_folder_is_one_error_line(tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model_index.json").write_text("{}")
    result = run_command("invert", str(PHOTOS / "chelsea.jpg"), "--prompt", "a cat", "--model", str(broken),
                         "--steps", "2", "-q", "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert len(error_lines(result.stderr)) == 1
    assert result.stderr.startswith("p2p-real: error: model folder") and str(broken) in result.stderr


def two_photos(folder: Path, other_caption: bytes) -> Path:
    """A folder of two photos, chelsea.jpg captioned in chelsea.txt and other.jpg in other.txt."""
    folder.mkdir()
    for name in ("chelsea.jpg", "other.jpg"):
        (folder / name).write_bytes((PHOTOS / "chelsea.jpg").read_bytes())
    (folder / "chelsea.txt").write_text("a cat")
    (folder / "other.txt").write_bytes(other_caption)
    return folder


def invert_folder(folder: Path, output: Path, capsys) -> tuple[int, list[str]]:
    code = main(["invert", str(folder), "--model", "tiny-random", "--steps", "2", "-q", "--output", str(output)])
    return code, error_lines(capsys.readouterr().err)


def test_a_caption_file_not_in_utf8_fails_its_photo_alone(tmp_path, capsys):
    folder = two_photos(tmp_path / "photos", b"a cat \xff\xfe")
    code, lines = invert_folder(folder, tmp_path / "out", capsys)
    assert code == 1
    assert len(lines) == 1 and str(folder / "other.txt") in lines[0] and "UTF-8" in lines[0]
    assert (tmp_path / "out" / "chelsea" / "inversion.json").is_file()


def test_a_captions_json_not_in_utf8_is_one_line_naming_it(tmp_path, capsys):
    folder = two_photos(tmp_path / "photos", b"a dog")
    (folder / "captions.json").write_bytes(b'{"chelsea.jpg": "a cat \xff"}')
    code, lines = invert_folder(folder, tmp_path / "out", capsys)
    assert code == 2 and len(lines) == 1 and str(folder / "captions.json") in lines[0]


def test_a_file_where_a_photo_folder_should_be_fails_that_photo_alone(tmp_path, capsys):
    folder = two_photos(tmp_path / "photos", b"a dog")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "chelsea").write_text("not a folder")
    code, lines = invert_folder(folder, tmp_path / "out", capsys)
    assert code == 1
    assert len(lines) == 1 and str(tmp_path / "out" / "chelsea") in lines[0] and "a file stands" in lines[0]
    assert (tmp_path / "out" / "other" / "inversion.json").is_file()


def test_an_output_turning_read_only_midway_fails_the_rest_in_one_line_each(tmp_path, capsys, monkeypatch):
    from p2p_real.runs import locks

    opened, real_open = [], os.open

    def open_until_read_only(path, flags, mode=0o777):
        if str(path).endswith(".lock"):
            opened.append(path)
            if len(opened) > 1:  # the folder turned read-only after the first photo was claimed
                raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(locks.os, "open", open_until_read_only)
    folder = two_photos(tmp_path / "photos", b"a dog")
    code, lines = invert_folder(folder, tmp_path / "out", capsys)
    assert code == 1
    assert len(lines) == 1 and "Permission denied" in lines[0] and ".other.lock" in lines[0]
    assert "internal error" not in lines[0]
    assert (tmp_path / "out" / "chelsea" / "inversion.json").is_file()
    assert not list((tmp_path / "out").rglob("*.lock"))


def test_a_lock_file_that_cannot_be_removed_does_not_fail_the_run(tmp_path, capsys, monkeypatch):
    real_unlink = Path.unlink

    def unlink_read_only(path, missing_ok=False):
        if path.name.endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink_read_only)
    folder = two_photos(tmp_path / "photos", b"a dog")
    code, lines = invert_folder(folder, tmp_path / "out", capsys)
    assert code == 0 and lines == []


def test_ui_on_a_busy_port_is_one_line_naming_the_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_command("ui", "--output", str(tmp_path), "--model", "tiny-random", "--port", str(port))
    assert result.returncode == 2
    assert error_lines(result.stderr) == [line for line in error_lines(result.stderr) if f"--port {port}" in line]
    assert len(error_lines(result.stderr)) == 1


def test_flags_of_one_edit_with_an_edits_file_are_refused_naming_the_flag(tmp_path, capsys):
    for flags in (["--target", "a dog"], ["--name", "mine"], ["--prompt", "a cat"],
                  ["--mask", str(SHAPES / "circle.png")], ["--cross-replace-steps", "0.5"],
                  ["--blend", "circle", "circle"]):
        code = main(["edit", str(SHAPES), "--model", "shapes", "--output", str(tmp_path), "-q", *flags])
        lines = error_lines(capsys.readouterr().err)
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"p2p-real: error: {flags[0]}:"), (flags, lines)
    assert not list(tmp_path.iterdir())


def test_an_edits_file_of_artifacts_is_edited_with_their_model(tmp_path, capsys):
    assert main(["invert", str(PHOTOS / "chelsea.jpg"), "--prompt", "a cat", "--model", "tiny-random", "--steps", "2",
                 "-q", "--output", str(tmp_path / "inverted")]) == 0
    edits = tmp_path / "best.yaml"  # as `p2p-real sweep` writes it: an artifact and no model
    edits.write_text(f"edits:\n  - artifact: {tmp_path / 'inverted' / 'chelsea'}\n    target: a dog\n")
    capsys.readouterr()
    code = main(["edit", str(edits), "--output", str(tmp_path / "edited"), "-q"])
    assert code == 0, capsys.readouterr().err
    assert len(list((tmp_path / "edited" / "chelsea").glob("*/edited.png"))) == 1


def test_an_edits_file_of_artifacts_of_several_models_asks_for_model(tmp_path, capsys):
    for model in ("tiny-random", "shapes"):
        assert main(["invert", str(SHAPES / "circle.png"), "--prompt", "a circle", "--model", model, "--steps", "2",
                     "-q", "--output", str(tmp_path / model)]) == 0
    edits = tmp_path / "edits.yaml"
    edits.write_text("edits:\n" + "".join(f"  - artifact: {tmp_path / model / 'circle'}\n    target: a square\n"
                                          for model in ("tiny-random", "shapes")))
    capsys.readouterr()
    code = main(["edit", str(edits), "--output", str(tmp_path / "edited"), "-q"])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and "--model" in lines[0] and "2 models" in lines[0]


def test_guidance_that_cannot_make_sense_is_refused_before_work(tmp_path, capsys):
    for guidance in ("0", "-1", "1e30", "101", "nan"):
        code = main(["invert", str(PHOTOS / "chelsea.jpg"), "--prompt", "a cat", "--model", "tiny-random",
                     "--guidance", guidance, "--output", str(tmp_path / "out")])
        lines = error_lines(capsys.readouterr().err)
        assert code == 2 and len(lines) == 1 and lines[0].startswith("p2p-real: error: --guidance:"), (guidance, lines)
    assert not (tmp_path / "out" / "chelsea").exists()


def test_guidance_out_of_range_is_refused_by_the_api(tiny_model):
    import pytest
    from PIL import Image

    from p2p_real.errors import OptionError
    from p2p_real.pipeline import invert

    image = Image.new("RGB", (tiny_model.resolution,) * 2)
    for guidance in (0.0, 1e30):
        with pytest.raises(OptionError, match="guidance_scale"):
            invert(tiny_model, [image], ["a cat"], "ddim", 2, guidance)


def test_a_pie_bench_mask_run_beyond_the_image_is_a_bad_entry(tmp_path):
    import json

    from p2p_real.runs.pie_bench import read_mapping_entries

    (tmp_path / "cat.jpg").write_bytes((PHOTOS / "chelsea.jpg").read_bytes())
    entry = {"image_path": "cat.jpg", "original_prompt": "a [cat]", "editing_prompt": "a [dog]",
             "blended_word": "cat dog", "editing_type_id": "1"}
    mapping = {"inside": {**entry, "mask": [0, 512 * 512]}, "beyond": {**entry, "mask": [512 * 512, 10]},
               "overlong": {**entry, "mask": [512 * 512 - 5, 10]}}
    (tmp_path / "mapping_file.json").write_text(json.dumps(mapping))
    edits, problems = read_mapping_entries(tmp_path / "mapping_file.json")
    assert [edit.key for edit in edits] == ["inside"]
    assert len(problems) == 2 and all("field mask" in problem and "beyond" in problem for problem in problems)


def test_a_photo_folder_linked_outside_the_output_is_refused(tmp_path, capsys):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "chelsea").symlink_to(outside, target_is_directory=True)
    folder = two_photos(tmp_path / "photos", b"a dog")
    code, lines = invert_folder(folder, tmp_path / "out", capsys)
    assert code == 1 and len(lines) == 1 and "outside the output folder" in lines[0]
    assert not list(outside.iterdir())
    assert (tmp_path / "out" / "other" / "inversion.json").is_file()


def test_an_edit_folder_linked_outside_the_output_is_refused(tmp_path, capsys):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    argv = ["edit", str(PHOTOS / "chelsea.jpg"), "--prompt", "a cat", "--target", "a dog", "--name", "dog",
            "--model", "tiny-random", "--steps", "2", "-q", "--output", str(tmp_path / "out")]
    (tmp_path / "out" / "chelsea").mkdir(parents=True)
    (tmp_path / "out" / "chelsea" / "dog").symlink_to(outside, target_is_directory=True)
    code = main(argv)
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and "outside the output folder" in lines[0]
    assert not list(outside.iterdir())


def test_a_sweep_of_another_target_into_the_same_output_is_refused(tmp_path, capsys):
    import json

    assert main(["invert", str(SHAPES / "circle.png"), "--prompt", "a circle", "--model", "tiny-random", "--steps", "2",
                 "-q", "--output", str(tmp_path / "inverted")]) == 0
    artifact = tmp_path / "inverted" / "circle"
    sweep_output = tmp_path / "sweep"
    sweep_output.mkdir()
    first = {"prompt": "a square", "artifact": str(artifact.resolve())}
    (sweep_output / "sweep.json").write_text(json.dumps(first))  # what the first sweep recorded of itself
    (sweep_output / "best.yaml").write_text("edits: []\n")
    capsys.readouterr()
    code = main(["sweep", str(artifact), "--target", "a triangle", "--model", "tiny-random", "--metrics", "none",
                 "--metric-weights", "random", "-q", "--output", str(sweep_output)])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and "holds the sweep" in lines[0]
    assert json.loads((sweep_output / "sweep.json").read_text()) == first
    assert (sweep_output / "best.yaml").read_text() == "edits: []\n"


def test_gpus_without_that_many_cuda_gpus_is_refused(tmp_path, capsys, monkeypatch):
    from p2p_real.runs import launch

    monkeypatch.setattr(launch, "cuda_gpus", lambda: 0)  # as on this CPU machine, and any other without GPUs
    code = main(["invert", str(PHOTOS / "chelsea.jpg"), "--prompt", "a cat", "--model", "tiny-random", "--gpus", "2",
                 "-q", "--output", str(tmp_path)])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("p2p-real: error: --gpus 2: no CUDA GPU")


# A stand-in for torchrun: it starts a worker in a session of its own (as torchrun does) and stops it on SIGTERM.
LAUNCHER = """
import signal, subprocess, sys, time
def stop(signum, frame):
    worker.terminate(); worker.wait(); open(sys.argv[2], "w").write("stopped"); sys.exit(1)
signal.signal(signal.SIGTERM, stop)
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
open(sys.argv[1], "w").write(str(worker.pid))
time.sleep(120)
"""


def test_sigterm_to_the_command_reaches_the_processes_it_started(tmp_path):
    import signal
    import time

    worker_pid, stopped = tmp_path / "worker.pid", tmp_path / "stopped"
    runner = ("import sys; from p2p_real.runs.launch import run_owned; "
              f"sys.exit(run_owned([sys.executable, '-c', {LAUNCHER!r}, {str(worker_pid)!r}, {str(stopped)!r}]))")
    command = subprocess.Popen([sys.executable, "-c", runner])
    deadline = time.monotonic() + 60
    while not worker_pid.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)  # the pid's file written whole
    command.send_signal(signal.SIGTERM)
    assert command.wait(timeout=60) == 128 + signal.SIGTERM
    assert stopped.read_text() == "stopped"  # the launcher got the signal, and had stopped its worker when we returned
    pid = int(worker_pid.read_text())
    try:
        os.kill(pid, 0)
        alive = open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    assert not alive


def inverted_chelsea(output: Path) -> Path:
    assert main(["invert", str(PHOTOS / "chelsea.jpg"), "--prompt", "a cat", "--model", "tiny-random", "--steps", "2",
                 "-q", "--output", str(output)]) == 0
    return output / "chelsea"


def tamper(artifact: Path, name: str, tensor) -> None:
    """Replace one tensor of the artifact, and its checksum with it, as a careless tool might."""
    import hashlib
    import json

    from safetensors.torch import load, save

    tensors = load((artifact / "inversion.safetensors").read_bytes())
    data = save({**tensors, name: tensor})
    (artifact / "inversion.safetensors").write_bytes(data)
    record = json.loads((artifact / "inversion.json").read_text())
    (artifact / "inversion.json").write_text(json.dumps({**record, "tensors_sha256": hashlib.sha256(data).hexdigest()}))


def test_artifacts_whose_tensors_do_not_fit_are_refused_naming_them(tmp_path, capsys):
    import torch

    artifact = inverted_chelsea(tmp_path / "inverted")
    from safetensors.torch import load

    good = load((artifact / "inversion.safetensors").read_bytes())["noise_latents"]
    for name, tensor, needle in (("noise_latents", good[:, :4, :4].contiguous(), "do not fit"),
                                 ("noise_latents", good.to(torch.int32), "dtype"),
                                 ("noise_latents", torch.full_like(good, float("nan")), "not finite")):
        tamper(artifact, name, tensor)
        capsys.readouterr()
        code = main(["edit", str(artifact), "--target", "a dog", "--model", "tiny-random", "-q",
                     "--output", str(tmp_path / "edited")])
        lines = error_lines(capsys.readouterr().err)
        assert code == 2 and len(lines) == 1 and str(artifact) in lines[0] and needle in lines[0], lines
    assert not (tmp_path / "edited" / "chelsea").exists() or not list((tmp_path / "edited").rglob("edited.png"))


def test_a_kept_artifact_truncated_after_its_record_is_redone_on_resume(tmp_path, capsys):
    from p2p_real.artifacts import load_inversion

    artifact = inverted_chelsea(tmp_path / "inverted")
    tensors = artifact / "inversion.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:1000])
    capsys.readouterr()
    inverted_chelsea(tmp_path / "inverted")
    assert "inverted 1 photo(s)" in capsys.readouterr().out
    load_inversion(artifact)  # whole again


def test_a_mask_of_another_shape_than_the_photo_is_refused_naming_it(tmp_path, capsys):
    from PIL import Image

    artifact = inverted_chelsea(tmp_path / "inverted")  # chelsea.jpg is square
    mask = tmp_path / "wide.png"
    Image.new("L", (90, 60), 255).save(mask)
    capsys.readouterr()
    code = main(["edit", str(artifact), "--target", "a dog", "--mask", str(mask), "--model", "tiny-random", "-q",
                 "--output", str(tmp_path / "edited")])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and str(mask) in lines[0] and "would not line up" in lines[0]
    Image.new("L", (64, 64), 255).save(mask)  # the photo's shape at another size lines up
    assert main(["edit", str(artifact), "--target", "a dog", "--mask", str(mask), "--model", "tiny-random", "-q",
                 "--output", str(tmp_path / "edited")]) == 0


def test_a_folder_of_photos_that_cannot_be_listed_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    folder = two_photos(tmp_path / "photos", b"a dog")
    real_iterdir = Path.iterdir

    def unlistable(path):
        if path == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real_iterdir(path)

    monkeypatch.setattr(Path, "iterdir", unlistable)
    code, lines = invert_folder(folder, tmp_path / "out", capsys)
    assert code == 2 and len(lines) == 1 and str(folder) in lines[0] and "cannot list" in lines[0]
