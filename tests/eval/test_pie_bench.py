import json

import numpy as np
import pytest

from p2p_real.errors import P2PError
from p2p_real.eval.pie_bench import decode_mask, read_mapping_file, without_brackets


def test_decode_a_hand_made_run_length_mask():
    size = 8
    # Row-major runs: row 2 columns 3..5, and row 4 columns 1..6.
    mask = decode_mask([2 * size + 3, 3, 4 * size + 1, 6], size=size)
    expected = np.zeros((size, size), dtype=np.float32)
    expected[2, 3:6] = 1
    expected[4, 1:7] = 1
    expected[0, :] = expected[-1, :] = expected[:, 0] = expected[:, -1] = 1  # PIE-Bench's border
    assert np.array_equal(mask, expected)
    assert decode_mask([9, 100], size=size).sum() == size * size  # a run past the end is clipped, not an error


def test_mapping_file_entries(tmp_path):
    (tmp_path / "cat.jpg").write_bytes(b"")
    mapping = {"000": {"image_path": "cat.jpg", "original_prompt": "a [cat] on a mat",
                       "editing_prompt": "a [dog] on a mat", "blended_word": "cat dog",
                       "mask": [0, 10], "editing_type_id": "1"}}
    (tmp_path / "mapping_file.json").write_text(json.dumps(mapping))
    [entry] = read_mapping_file(tmp_path / "mapping_file.json")
    assert entry.source_prompt == "a cat on a mat" and entry.target_prompt == "a dog on a mat"
    assert entry.blend_words == ("cat", "dog") and entry.edit_type == "1" and entry.mask.shape == (512, 512)
    assert without_brackets("a [ red ] car") == "a red car"
    (tmp_path / "bad.json").write_text(json.dumps({"1": {"image_path": "x.jpg"}}))
    with pytest.raises(P2PError, match="entry 1: missing or malformed field 'original_prompt'"):
        read_mapping_file(tmp_path / "bad.json")
