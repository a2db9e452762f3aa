import json
from pathlib import Path

import pytest

from p2p_real.cli import main
from p2p_real.errors import P2PError
from p2p_real.runs.pie_bench import read_mapping_entries, read_mapping_file


def test_mapping_file_entries(tmp_path):
    (tmp_path / "cat.jpg").write_bytes(b"")
    mapping = {"000": {"image_path": "cat.jpg", "original_prompt": "a [cat] on a mat",
                       "editing_prompt": "a [dog] on a mat", "blended_word": "cat dog",
                       "mask": [0, 10], "editing_type_id": "1"}}
    (tmp_path / "mapping_file.json").write_text(json.dumps(mapping))
    [entry] = read_mapping_file(tmp_path / "mapping_file.json")
    assert entry.source_prompt == "a cat on a mat" and entry.target_prompt == "a dog on a mat"
    assert entry.blend_words == ("cat", "dog") and entry.edit_type == "1" and entry.mask.shape == (512, 512)
    assert entry.image == tmp_path / "cat.jpg"
    (tmp_path / "annotation_images").mkdir()
    (tmp_path / "annotation_images" / "dog.jpg").write_bytes(b"")  # PIE-Bench's own layout
    (tmp_path / "nested.json").write_text(json.dumps({"1": {**mapping["000"], "image_path": "dog.jpg"}}))
    assert read_mapping_file(tmp_path / "nested.json")[0].image == tmp_path / "annotation_images" / "dog.jpg"
    (tmp_path / "bad.json").write_text(json.dumps({"1": {"image_path": "cat.jpg"}}))
    with pytest.raises(P2PError, match="entry 1, field original_prompt: expected the caption as text"):
        read_mapping_file(tmp_path / "bad.json")  # all or nothing


@pytest.mark.parametrize("field, value, needle", [
    ("blended_word", 5, "expected the source and target words as text"),
    ("mask", [0, "10"], "run-length pairs"),
    ("mask", "0 10", "run-length pairs"),
    ("original_prompt", None, "expected the caption as text"),
    ("editing_prompt", "[]", "expected the caption as text"),
    ("image_path", "missing.jpg", "no photo missing.jpg"),
    ("editing_type_id", [1], "expected an id"),
])
def test_a_bad_mapping_entry_is_named_and_skipped(tmp_path, field, value, needle):
    (tmp_path / "cat.jpg").write_bytes(b"")
    good = {"image_path": "cat.jpg", "original_prompt": "a [cat]", "editing_prompt": "a [dog]",
            "blended_word": "cat dog"}
    (tmp_path / "mapping_file.json").write_text(json.dumps({"good": good, "bad": {**good, field: value}, "odd": 3}))
    edits, problems = read_mapping_entries(tmp_path / "mapping_file.json")
    assert [edit.key for edit in edits] == ["good"]
    assert problems[0].startswith(f"{tmp_path / 'mapping_file.json'}, entry bad, field {field}: ")
    assert needle in problems[0]
    assert "entry odd: expected an object" in problems[1] and len(problems) == 2


def test_bench_edit_runs_the_good_entries_and_names_the_bad(tmp_path, capsys):
    photos = Path(__file__).parent.parent.parent / "data" / "photos"
    good = {"image_path": str(photos / "chelsea.jpg"), "original_prompt": "a tabby [cat]",
            "editing_prompt": "a tabby [dog]", "blended_word": "cat dog", "editing_type_id": "1"}
    (tmp_path / "mapping_file.json").write_text(json.dumps({"good": good, "bad": {**good, "blended_word": 5}}))
    argv = ["bench", "edit", str(tmp_path / "mapping_file.json"), "--output", str(tmp_path / "out"), "--method", "ddim",
            "--metrics", "none", "--model", "tiny-random", "--steps", "2", "--quiet"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (f"p2p-real: skipped {tmp_path / 'mapping_file.json'}, entry bad, "
                                    "field blended_word: expected the source and target words as text, "
                                    "e.g. \"cat dog\" (or \"\"); got 5")
    assert [row["key"] for row in json.loads((tmp_path / "out" / "edit.json").read_text())["rows"]] == ["good"]
