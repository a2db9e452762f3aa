import json

import pytest

from p2p_real.errors import P2PError
from p2p_real.runs.pie_bench import read_mapping_file


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
    (tmp_path / "bad.json").write_text(json.dumps({"1": {"image_path": "x.jpg"}}))
    with pytest.raises(P2PError, match="entry 1: missing or malformed field 'original_prompt'"):
        read_mapping_file(tmp_path / "bad.json")
