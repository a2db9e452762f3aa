"""The seams of runs/ (issue 20): requests built from flags by name, one out-of-memory back-off,
one record builder, one row per edit option. The budgets and the layer order are tests/test_layout.py's."""
from argparse import Namespace
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from p2p_real.command_line import build_parser
from p2p_real.runs import edit_flags
from p2p_real.runs.flags import Flags, build_request
from p2p_real.runs.memory import BatchLimit, Failed, split_on_out_of_memory
from p2p_real.runs.requests import (
    BenchEditRequest,
    BenchReconstructRequest,
    EditRequest,
    InvertRequest,
    ModelChoice,
    SweepRequest,
    UiRequest,
)

PACKAGE = Path(__file__).resolve().parents[2] / "p2p_real"
DATA = Path(__file__).resolve().parents[2] / "data"
PHOTO = str(DATA / "photos" / "chelsea.jpg")


def command_lines(output):
    out = ["--output", str(output), "--model", "shapes", "--device", "cpu", "--dtype", "float32", "--no-cuda-graphs",
           "--no-compile"]
    return {
        InvertRequest: ["invert", PHOTO, "--prompt", "a cat", "--steps", "3", "--guidance", "5", "--inner-steps", "2",
                        "--batch-size", "2", "--force", "-q", *out],
        EditRequest: ["edit", PHOTO, "--prompt", "a cat", "--target", "a dog", "--kind", "replace",
                      "--blend", "cat", "dog",
                      "--reweight", "dog=2", "--word-steps", "dog=0,0.5", "--batch-size", "auto", "--maps", *out],
        SweepRequest: ["sweep", PHOTO, "--prompt", "a cat", "--target", "a dog", "--cross", "0.2",
                       "--self", "0.4", "--settings-per-pass", "3", "--metrics", "none", *out],
        BenchReconstructRequest: ["bench", "reconstruct", str(DATA / "photos"), "--methods", "ddim",
                                  "--metrics", "none", *out],
        BenchEditRequest: ["bench", "edit", PHOTO, "--method", "ddim", "--metrics", "lpips", *out],
        UiRequest: ["ui", str(DATA / "photos"), "--port", "8000", *out],
    }


@pytest.mark.parametrize("kind", list(command_lines("out")), ids=lambda kind: kind.__name__)
def test_every_verb_builds_its_request_from_its_flags_by_name(kind, tmp_path, monkeypatch):
    monkeypatch.setattr("p2p_real.runs.checks.find_spec", lambda name: object())  # as if gradio were installed
    request = build_request(build_parser().parse_args(command_lines(tmp_path)[kind]))
    assert type(request) is kind and request.output == str(tmp_path)
    assert request.model == ModelChoice(name_or_path="shapes", device="cpu", dtype="float32", cuda_graphs=False,
                                        compile=False)
    if kind is InvertRequest:
        assert (request.steps, request.guidance, request.null_text.num_inner_steps) == (3, 5.0, 2)
        assert request.batch_size == 2
    if kind is EditRequest:
        assert request.options.kind == "replace" and request.options.blend_words == ("cat", "dog")
        assert request.options.reweights == {"dog": 2.0}
        assert request.options.cross_replace_steps == {"default_": 0.4, "dog": (0, 0.5)}
        assert request.steps == 10 and request.batch_size == "auto" and request.maps  # shapes' own step default
    if kind is SweepRequest:
        assert request.settings_per_pass == 3 and request.metrics == frozenset() and request.grid.cross == (0.2,)


def test_a_flag_renamed_in_the_parser_fails_loudly(tmp_path):
    namespace = build_parser().parse_args(command_lines(tmp_path)[InvertRequest])
    renamed = Namespace(**{("steps_count" if key == "steps" else key): value for key, value in vars(namespace).items()})
    with pytest.raises(AttributeError, match="'steps'"):
        build_request(renamed)
    extra = Namespace(**vars(namespace), forgotten=1)  # a flag the parser has and no request reads
    with pytest.raises(AssertionError, match="forgotten"):
        build_request(extra)


def test_flags_know_what_was_read():
    flags = Flags(Namespace(a=1, b=2, verb="x", build=None))
    assert flags.a == 1 and flags.unread() == {"b"}


class Model:
    def __init__(self):
        self.freed = 0

    def free_gpu_memory(self):
        self.freed += 1


def fits(most):
    """A fake batch's work that runs out of GPU memory above `most` items, and its calls."""
    calls = []

    def work(items):
        calls.append(list(items))
        if len(items) > most:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return [item * 10 for item in items]
    return work, calls


def test_out_of_memory_halves_the_batch_and_lowers_the_limit_for_the_rest_of_the_run():
    model, limit = Model(), BatchLimit(8)
    work, calls = fits(2)
    assert split_on_out_of_memory(work, range(8), model, "try less", limit) == [0, 10, 20, 30, 40, 50, 60, 70]
    assert [len(call) for call in calls] == [8, 4, 2, 2, 2, 2] and limit.size == 2 and model.freed == 2
    calls.clear()
    assert split_on_out_of_memory(work, [1, 2, 3], model, "try less", limit) == [10, 20, 30]
    assert [len(call) for call in calls] == [2, 1]  # the lowered limit holds: no retry at 3


def test_an_item_that_does_not_fit_alone_fails_with_the_advice_and_the_others_are_done():
    work, calls = fits(0)
    outcomes = split_on_out_of_memory(work, ["a", "b"], Model(), "try a smaller --batch-size", one_by_one=True)
    assert outcomes == [Failed("out of GPU memory: try a smaller --batch-size")] * 2
    assert [len(call) for call in calls] == [2, 1, 1]


def test_other_errors_named_are_retried_one_by_one_and_said_in_their_own_words():
    def work(items):
        if "bad" in items:
            raise ValueError(f"{len(items)} items, one bad")
        return items
    model = Model()
    outcomes = split_on_out_of_memory(work, ["good", "bad", "fine"], model, "-", one_by_one=True, also=(ValueError,))
    assert outcomes == ["good", Failed("1 items, one bad"), "fine"] and model.freed == 0  # no memory to free
    with pytest.raises(KeyError):  # any other error is a bug: it goes up
        split_on_out_of_memory(lambda items: {}[0], [1], model, "-")


def test_the_bench_records_an_edit_as_edit_does(tiny_model, monkeypatch, tmp_path):
    from p2p_real.artifacts import tensors_sha256
    from p2p_real.editing.options import EditOptions
    from p2p_real.eval.pie_bench import BenchEdit
    from p2p_real.eval.scores import MetricModels
    from p2p_real.runs import bench
    from p2p_real.runs.records import edit_record

    options = EditOptions(reweights={"tabby": 1.5}, blend_threshold=0.4, self_replace_steps=0.3)
    entry = BenchEdit("one", DATA / "photos" / "chelsea.jpg", "a tabby cat", "a tabby dog", ("cat", "dog"), None, "1")
    saved = []
    monkeypatch.setattr(bench, "save_png", lambda picture, path, settings: saved.append(settings))
    monkeypatch.setattr(bench, "pie_bench_scores", lambda result, entry, models, protocol: {})
    [row] = bench.bench_edit(tiny_model, [entry], tmp_path, MetricModels(), bench.InversionSettings("ddim", 2), options,
                             progress=False)
    assert "error" not in row, row
    inversion = bench.load_inversion(tmp_path / row["artifact"], tiny_model)
    wanted = edit_record("a tabby dog", replace(options, blend_words=("cat", "dog")), inversion, tiny_model,
                         tensors_sha256(inversion))
    [settings] = saved
    assert {key: value for key, value in settings.items() if key not in ("resolved_kind", "artifact")} == wanted
    assert settings["reweights"] == {"tabby": 1.5} and settings["blend_threshold"] == 0.4  # once dropped by bench


def test_a_new_edit_option_needs_one_row(monkeypatch):
    """A row of the flag table gives a field its flag, its edits file field and its entry written back."""
    row = edit_flags.EditFlag("blend_start", "--blend-start", "from which fraction of the steps LocalBlend acts",
                              argparse={"type": float})
    monkeypatch.setattr(edit_flags, "EDIT_FLAGS", (*edit_flags.EDIT_FLAGS, row))
    parser = build_parser()
    options = edit_flags.edit_options(vars(parser.parse_args(["edit", PHOTO, "--output", "o", "--blend-start", "0.5"])))
    assert options.blend_start == 0.5
    assert edit_flags.entry_options({"blend_start": 0.25}).blend_start == 0.25
    assert edit_flags.entry_fields(options)["blend_start"] == 0.5
