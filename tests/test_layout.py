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


@pytest.mark.parametrize("path", sorted(set(PACKAGE.rglob("*.py")) - LONG_FUNCTIONS_ALLOWED),
                         ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_function_is_over_60_lines(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"{path.name}:{node.lineno} {node.name}() is {length} lines"


# ---- the folder order -----------------------------------------------------------------------------
# An import goes to the same layer or a lower one. Within a layer, a folder imports only itself, and
# top-level modules may import each other (but not a folder of their layer, nor it them).
LAYERS = {
    "cli.py": 6, "command_line.py": 6, "__main__.py": 6, "__init__.py": 6,  # the public API: anything below
    "model_flags.py": 6,
    "ui": 5,
    "runs": 4,
    "shapes": 3,  # the test bed: a trained model and its reader; runs may inject its scorer downward
    "pipeline.py": 2.5,  # invert(): the stages put together
    "inversion": 2, "editing": 2, "eval": 2,  # the stages, which never import each other
    "joint_attention.py": 1,  # SD3's joint-attention processor (issue 26)
    "models.py": 1, "loading.py": 1, "graphs.py": 1, "attention.py": 1, "sampling.py": 1, "schedule.py": 1,
    "text_encoders.py": 1, "random_models.py": 1, "sd3_text.py": 1, "flow_schedule.py": 1,
    "random_sd3.py": 1, "model_parts.py": 1, "rows.py": 1, "devices.py": 1, "loras.py": 1, "fingerprints.py": 1,
    "single_file.py": 1,
    "images.py": 0, "artifacts.py": 0, "errors.py": 0, "defaults.py": 0, "hub.py": 0, "clip_tokenizer.py": 0,
    "t5_tokenizer.py": 0,
}
# The base modules import each other only so, which keeps them free of loops.
BASE_IMPORTS = {("images.py", "errors.py"), ("artifacts.py", "errors.py"), ("artifacts.py", "images.py")}


def place(path: Path) -> str:
    """The entry of LAYERS that a module of the package belongs to: its folder, or its own file name."""
    return path.relative_to(PACKAGE).parts[0]


def imported_modules(path: Path):
    """(line, module path) of each import of the package's own modules in `path`, relative or
    absolute, at any depth (an import inside a function counts as one at the top)."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]  # ("p2p_real", "shapes")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            # `from . import x` names a module when x is one, else a name in the package
            names = [module + [alias.name] for alias in node.names] if not node.module else [module]
        else:
            continue
        for name in names:
            if name[:1] == [PACKAGE.name]:
                yield node.lineno, module_path(name[1:])


def module_path(parts: list[str]) -> Path:
    """p2p_real.runs.edits -> PACKAGE/runs/edits.py; a name inside a module gives the module."""
    while parts:
        if (PACKAGE.joinpath(*parts).with_suffix(".py")).is_file():
            return PACKAGE.joinpath(*parts).with_suffix(".py")
        if (PACKAGE.joinpath(*parts) / "__init__.py").is_file():
            return PACKAGE.joinpath(*parts) / "__init__.py"
        parts = parts[:-1]
    return PACKAGE / "__init__.py"


def import_refusal(importer: Path, imported: Path) -> str | None:
    """Why `importer` may not import `imported`, or None if it may."""
    source, target = place(importer), place(imported)
    if source == target:
        return None
    if LAYERS[target] > LAYERS[source]:
        return f"{target} (layer {LAYERS[target]}) sits above {source} (layer {LAYERS[source]})"
    if LAYERS[target] < LAYERS[source]:
        return None
    if LAYERS[source] == 0:
        allowed = (source, target) in BASE_IMPORTS
        return None if allowed else f"base modules import each other only as {sorted(BASE_IMPORTS)}"
    if source.endswith(".py") and target.endswith(".py"):
        return None
    return f"{source} and {target} share layer {LAYERS[source]}, and a folder imports no neighbour of its layer"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path):
    assert place(path) in LAYERS, (f"{path.relative_to(PACKAGE)} has no layer: add {place(path)!r} to LAYERS in "
                                   "tests/test_layout.py, above what it imports and below what imports it")
    refused = []
    for line, imported in imported_modules(path):
        assert place(imported) in LAYERS, f"{imported.relative_to(PACKAGE)} has no layer in tests/test_layout.py"
        refusal = import_refusal(path, imported)
        if refusal is not None:
            refused.append(f"{path.relative_to(PACKAGE)}:{line} imports {imported.relative_to(PACKAGE)}: {refusal}")
    assert not refused, "\n".join(refused)


def test_the_layer_rules_refuse_what_they_should():
    def refusal(importer, imported):
        return import_refusal(PACKAGE / importer, PACKAGE / imported)

    assert refusal("runs/invert.py", "pipeline.py") is None
    assert refusal("runs/invert.py", "runs/naming.py") is None
    assert refusal("pipeline.py", "inversion/null_text.py") is None
    assert refusal("models.py", "graphs.py") is None
    assert refusal("shapes/evaluate.py", "runs/bench.py") is not None
    assert refusal("editing/edit.py", "inversion/options.py") is not None
    assert refusal("inversion/ddim.py", "pipeline.py") is not None
    assert refusal("errors.py", "images.py") is not None
    assert place(PACKAGE / "shapes" / "evaluate.py") == "shapes"
    assert module_path(["runs", "edits", "run_edits"]) == PACKAGE / "runs" / "edits.py"


# ---- sizes ----------------------------------------------------------------------------------------
LONG_MODULES_ALLOWED = {PACKAGE / "shapes" / "scenes.py", PACKAGE / "shapes" / "train.py"}  # data and a training script


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


@pytest.mark.parametrize("path", sorted(set(PACKAGE.rglob("*.py")) - LONG_MODULES_ALLOWED),
                         ids=lambda path: str(path.relative_to(PACKAGE)))
def test_modules_stay_short(path):
    limit = 250 if place(path) == "runs" else 300
    assert line_count(path) <= limit, f"{path.relative_to(PACKAGE)}:1 is {line_count(path)} lines, over {limit}"


def test_models_stays_a_seam():
    assert line_count(PACKAGE / "models.py") < 220, f"models.py:1 is {line_count(PACKAGE / 'models.py')} lines"


def parameter_count(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    arguments = function.args
    names = [argument.arg for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
    names += [argument.arg for argument in (arguments.vararg, arguments.kwarg) if argument is not None]
    return len([name for name in names if name not in ("self", "cls")])


@pytest.mark.parametrize("path", modules("runs"), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_runs_functions_take_few_parameters(path):
    """Past eight, the parameters want a request object."""
    long = [f"runs/{path.name}:{node.lineno} {node.name}() takes {parameter_count(node)} parameters"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and parameter_count(node) > 8]
    assert not long, "\n".join(long)


def test_parameter_count_counts_every_kind():
    [function] = ast.parse("def f(self, a, /, b, *rest, c, d=1, **more): pass").body
    assert parameter_count(function) == 6


def test_the_cli_passes_no_keyword_bags():
    """cli.py builds typed requests by name; `**vars(args)` would hide what it passes."""
    bags = [f"cli.py:{node.lineno} passes **{ast.unparse(keyword.value)}"
            for node in ast.walk(ast.parse((PACKAGE / "cli.py").read_text())) if isinstance(node, ast.Call)
            for keyword in node.keywords if keyword.arg is None]
    assert not bags, "\n".join(bags)


# ---- one home for each decision -------------------------------------------------------------------


def package_trees():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text())


def test_the_guidance_scale_is_written_once():
    places = [f"{path.relative_to(PACKAGE)}:{node.lineno}" for path, tree in package_trees() for node in ast.walk(tree)
              if isinstance(node, ast.Constant) and type(node.value) is float and node.value == 7.5]
    assert len(places) == 1, f"7.5 appears at {places}; name it once (defaults.DEFAULT_GUIDANCE) and import it"


def compared_strings(node: ast.Compare):
    """String constants that a comparison compares with, alone or in a tuple, list or set."""
    for operand in (node.left, *node.comparators):
        elements = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
        for element in elements:
            if isinstance(element, ast.Constant) and isinstance(element.value, str):
                yield element.value


def comparisons(allowed: set[Path]):
    for path, tree in package_trees():
        if path not in allowed:
            for node in ast.walk(tree):
                if isinstance(node, ast.Compare):
                    yield path, node


METHOD_NAMES = {"null-text", "ddim", "negative-prompt", "direct"}
FAMILY_NAMES = {"sd", "sdxl", "sd3"}


def test_only_the_methods_table_branches_on_a_method_name():
    branches = [f"{path.relative_to(PACKAGE)}:{node.lineno} compares with {sorted(names)}"
                for path, node in comparisons({PACKAGE / "inversion" / "methods.py"})
                if (names := METHOD_NAMES.intersection(compared_strings(node)))]
    assert not branches, "ask the method (inversion/methods.py) instead:\n" + "\n".join(branches)


def test_only_loading_and_text_encoders_branch_on_the_family():
    branches = []
    for path, node in comparisons({PACKAGE / "text_encoders.py", PACKAGE / "loading.py"}):
        names = FAMILY_NAMES.intersection(compared_strings(node))
        if names:
            branches.append(f"{path.relative_to(PACKAGE)}:{node.lineno} compares with {sorted(names)}")
        if any(isinstance(part, ast.Attribute) and part.attr == "family" for part in ast.walk(node)):
            branches.append(f"{path.relative_to(PACKAGE)}:{node.lineno} compares .family")
    assert not branches, "ask the text encoder (text_encoders.py) instead:\n" + "\n".join(branches)


def test_the_comparison_checks_see_tuples_and_both_sides():
    [statement] = ast.parse('method in ("ddim", "direct") or "sd" == family').body
    first, second = statement.value.values
    assert set(compared_strings(first)) == {"ddim", "direct"} and set(compared_strings(second)) == {"sd"}


def names_out_of_memory(node: ast.expr | None) -> bool:
    return node is not None and any(
        (isinstance(part, ast.Name) and part.id == "OutOfMemoryError")
        or (isinstance(part, ast.Attribute) and part.attr == "OutOfMemoryError") for part in ast.walk(node))


def out_of_memory_handlers(path: Path, tree: ast.Module):
    """The functions (file:line name) with an `except` clause naming OutOfMemoryError."""
    found = set()

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{path.relative_to(PACKAGE)}:{child.lineno} {child.name}()")
                continue
            if isinstance(child, ast.ExceptHandler) and names_out_of_memory(child.type):
                found.add(function)
            visit(child, function)

    visit(tree, f"{path.relative_to(PACKAGE)} (module level)")
    return found


def test_one_function_catches_out_of_memory():
    """Running out of memory is handled in one place (backing off the batch size), not guessed at in many."""
    handlers = sorted(handler for path, tree in package_trees() for handler in out_of_memory_handlers(path, tree))
    assert len(handlers) == 1, f"except ...OutOfMemoryError in {handlers or 'no function'}"
    assert handlers[0].startswith("runs/memory.py:"), f"the back-off lives in runs/memory.py, not {handlers[0]}"
