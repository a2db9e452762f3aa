"""`p2p-real ui` on the command line: its flags, and gradio as an optional extra that only it needs."""
import subprocess
import sys
from pathlib import Path

import pytest

from p2p_real.cli import main
from p2p_real.command_line import build_parser
from p2p_real.errors import P2PError
from p2p_real.runs import checks
from p2p_real.runs.requests import UiRequest
from p2p_real.ui import command as ui_command

INSTALL = 'pip install "p2p-real[ui]"'


def test_the_defaults_serve_this_machine_only_and_share_nothing(tmp_path):
    options = vars(build_parser().parse_args(["ui", "--output", str(tmp_path)]))
    assert (options["host"], options["port"], options["share"], options["inputs"]) == ("127.0.0.1", 7860, False, [])
    assert options["build"].__name__ == "ui_request" and "gpus" not in options and "progress" not in options


def test_without_gradio_the_command_says_how_to_install_it_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(checks, "find_spec", lambda name: None)
    assert main(["ui", "--output", str(tmp_path), "--model", "shapes"]) == 2
    assert capsys.readouterr().err == (f"p2p-real: error: p2p-real ui needs gradio, which the ui extra installs: "
                                       f"{INSTALL}\n")


def test_run_ui_says_so_too_when_gradio_cannot_be_imported(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio fails, as where it is not installed
    monkeypatch.delitem(sys.modules, "p2p_real.ui.page", raising=False)
    with pytest.raises(P2PError, match=INSTALL.replace("[", r"\[").replace("]", r"\]")):
        ui_command.run_ui(UiRequest(inputs=(), output=str(tmp_path)))


@pytest.mark.parametrize("argv, message", [
    (["--port", "0"], "--port: expected a port number from 1 to 65535, got 0"),
    (["no/such/folder"], "no/such/folder: no such file or folder"),
])
def test_bad_flags_are_said_before_the_model_loads(tmp_path, capsys, argv, message, monkeypatch):
    monkeypatch.setattr(checks, "find_spec", lambda name: object())  # as if gradio were installed
    assert main(["ui", "--output", str(tmp_path), *argv]) == 2
    assert capsys.readouterr().err == f"p2p-real: error: {message}\n"


def test_a_folder_with_nothing_to_pick_is_bad_input(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(checks, "find_spec", lambda name: object())
    (tmp_path / "empty").mkdir()
    assert main(["ui", "--output", str(tmp_path / "out"), str(tmp_path / "empty"), "--model", "shapes"]) == 2
    assert "empty: no photos" in capsys.readouterr().err


def test_the_other_verbs_never_import_gradio():
    code = ("import sys; from p2p_real import cli; "
            "from p2p_real.runs import invert_command, edit_command, sweep_command, bench_command; "
            "assert 'gradio' not in sys.modules, 'gradio imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
