"""The layering rules, checked on the source: stages never touch the user's files or the runs layer,
the CLI stays a thin parser, and functions stay short enough to read."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "p2p_real"
STAGES = ("inversion", "editing", "eval")
FILE_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "mkdir", "save_png", "save_file",
              "save_inversion", "load_inversion", "load_image", "unlink", "rename", "glob", "iterdir"}
LONG_FUNCTIONS_ALLOWED = {PACKAGE / "shapes" / "train.py"}  # training scripts, as benchmarks/


def modules(*folders):
    return sorted(path for folder in folders for path in (PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules(*STAGES), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_stages_neither_import_runs_nor_touch_files(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert "runs" not in (node.module or "").split("."), f"{path.name}:{node.lineno} imports runs"
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            assert name not in FILE_CALLS, f"{path.name}:{node.lineno} calls {name}(): files belong to p2p_real/runs/"


def test_the_cli_stays_short():
    assert len((PACKAGE / "cli.py").read_text().splitlines()) < 200


@pytest.mark.parametrize("path", sorted(set(PACKAGE.rglob("*.py")) - LONG_FUNCTIONS_ALLOWED), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_function_is_over_60_lines(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"{path.name}:{node.lineno} {node.name}() is {length} lines"
