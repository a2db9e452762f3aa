"""Issue 21: nothing lost, nothing trusted blindly, on the file system, in processes and in artifacts.
Each test runs the command as a user would and checks the one line and the exit code it promises."""
import os
import subprocess
import sys
from pathlib import Path

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
