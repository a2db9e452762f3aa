"""Edits files are checked entry by entry when read: a bad entry is one line naming the file, the entry
and the field, and is skipped while the good ones run (exit 1); a file with nothing good is exit 2."""
import json
import shutil
from pathlib import Path

import pytest

from p2p_real.cli import main
from p2p_real.editing.options import EditOptions
from p2p_real.runs.edits_file import EditJob, EditsFile, entry_for, read_edits_file
from p2p_real.runs.pie_bench import read_bench_edits

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
GOOD = "{photo: chelsea.jpg, prompt: a tabby cat, target: a tabby dog}"


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(DATA / "chelsea.jpg", folder)
    shutil.copy(DATA / "coffee.jpg", folder / "uncaptioned.jpg")
    (folder / "artifact").mkdir()
    return folder


@pytest.mark.parametrize("entry, field, needle", [
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: }", "target", "expected the edited caption"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: ''}", "target", "got ''"),
    ("{photo: chelsea.jpg, prompt: '', target: a dog}", "prompt", "got ''"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, name: 5}", "name", "got 5"),
    ("{photo: missing.jpg, prompt: a tabby cat, target: a dog}", "photo", "missing.jpg: no such photo"),
    ("{photo: chelsea.jpg, artifact: artifact, target: a dog}", "photo", "give either photo"),
    ("{photo: 7, target: a dog}", "photo", "a path relative to the edits file"),
    ("{photo: uncaptioned.jpg, target: a dog}", "prompt", "no caption for uncaptioned.jpg"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, kind: swap}", "kind", "expected one of auto, replace"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, cross_replace_steps: '0.4'}",
     "cross_replace_steps", "got '0.4'"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, cross_replace_steps: {dog: [0.8, 0.2]}}",
     "cross_replace_steps (dog)", "the window starts after it ends"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, self_replace_steps: [0, 2]}",
     "self_replace_steps", "got (0, 2)"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, reweight: tabby}", "reweight", "expected a mapping"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, reweight: {tabby: '2'}}",
     "reweight (tabby)", "expected a finite number, got '2'"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, reweight: {tabby: .nan}}",
     "reweight (tabby)", "got nan"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, blend: cat}", "blend", "expected two words"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, blend: [cat, 5]}", "blend", "expected two words"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, blend: [cat, dog], blend_threshold: 2}",
     "blend_threshold", "must be in [0, 1]"),
    ("{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, blend_threshold: 0.5}",
     "blend_threshold", "needs blend"),
])
def test_a_bad_entry_is_named_and_left_out(folder, entry, field, needle):
    (folder / "edits.yaml").write_text(f"edits:\n  - {GOOD}\n  - {entry}\n")
    jobs, problems = read = read_edits_file(folder / "edits.yaml")
    assert isinstance(read, EditsFile) and len(jobs) == 1 and jobs[0].target == "a tabby dog"
    [problem] = problems
    assert problem.startswith(f"{folder / 'edits.yaml'}, edit 2, field {field}: ") and needle in problem, problem
    assert "--" not in problem and "\n" not in problem


def test_entries_that_are_not_mappings_or_have_unknown_fields(folder):
    (folder / "edits.json").write_text(json.dumps(["a dog", {"photo": "chelsea.jpg", "target": "x", "colour": "red"},
                                                   {"artifact": "artifact", "target": "a dog", "blend": None}]))
    jobs, problems = read_edits_file(folder / "edits.json")
    assert [job.source.name for job in jobs] == ["artifact"] and jobs[0].options.blend_words is None  # null: not given
    assert "edit 1: expected a mapping" in problems[0] and "edit 2: unknown field(s) colour" in problems[1]


def test_good_entries_run_and_bad_ones_are_reported(folder, tmp_path, capsys):
    (folder / "edits.yaml").write_text(f"edits:\n  - {GOOD}\n  - {{photo: chelsea.jpg, target: }}\n"
                                       f"  - {{photo: chelsea.jpg, prompt: a tabby cat, target: a dog, blend: cat}}\n")
    argv = ["edit", str(folder), "--output", str(tmp_path / "out"), "--model", "tiny-random", "--steps", "2", "--quiet"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "1 edit(s)" in captured.out and "2 bad entries skipped" in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2 and "edit 2, field target" in lines[0] and "edit 3, field blend" in lines[1]
    assert len(list((tmp_path / "out" / "chelsea").glob("*/edited.png"))) == 1


def test_a_file_with_no_good_entry_is_bad_input(folder, tmp_path, capsys):
    (folder / "edits.yaml").write_text("edits:\n  - {photo: chelsea.jpg, target: }\n"
                                       "  - {photo: missing.jpg, target: x}\n")
    assert main(["edit", str(folder), "--output", str(tmp_path / "out"), "--model", "tiny-random"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("p2p-real: error: ") for line in lines)
    assert "edit 1, field target" in lines[0] and "edit 2, field photo" in lines[1]
    (folder / "edits.yaml").write_text("edits: []\n")
    assert main(["edit", str(folder), "--output", str(tmp_path / "out"), "--model", "tiny-random"]) == 2
    assert "expected a list of edits" in capsys.readouterr().err


def test_bench_reads_the_bad_entries_of_an_edits_file_too(folder):
    (folder / "edits.yaml").write_text(f"edits:\n  - {GOOD}\n  - {{photo: chelsea.jpg, target: 5}}\n")
    edits, problems = read_bench_edits(folder / "edits.yaml")
    assert [edit.target_prompt for edit in edits] == ["a tabby dog"] and "edit 2, field target" in problems[0]


@pytest.mark.parametrize("options", [
    EditOptions(),
    EditOptions(kind="replace", cross_replace_steps=(0.1, 0.7), self_replace_steps=0.2, blend_words=("cat", "dog"),
                blend_threshold=0.45),
    EditOptions(cross_replace_steps={"default_": 0.4, "dog": (0.0, 0.8)}, reweights={"tabby": -1.5}),
])
def test_an_entry_written_for_a_job_reads_back_as_that_job(folder, options):
    import yaml

    for job in (EditJob(folder / "artifact", "a tabby dog", options, name="mine"),
                EditJob(folder / "chelsea.jpg", "a tabby dog", options, prompt="a tabby cat")):
        (folder / "edits.yaml").write_text(yaml.safe_dump({"edits": [entry_for(job)]}))
        ([read], problems) = read_edits_file(folder / "edits.yaml")
        assert not problems and read.options == job.options
        assert (read.target, read.name, read.prompt) == (job.target, job.name, job.prompt)
        assert read.source.resolve() == job.source.resolve()
