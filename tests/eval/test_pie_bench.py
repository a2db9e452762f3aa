from pathlib import Path

import numpy as np
import pytest

from p2p_real.errors import OptionError
from p2p_real.eval.pie_bench import decode_mask, from_mapping_entry, without_brackets


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


def test_a_mapping_entry_without_brackets_blend_words_and_mask():
    entry = {"original_prompt": "a [cat]  on a mat", "editing_prompt": "a [ red ] dog on a mat",
             "blended_word": "cat dog", "mask": [0, 10], "editing_type_id": 1}
    edit = from_mapping_entry(7, entry, Path("cat.jpg"))
    assert edit.key == "7" and edit.image == Path("cat.jpg") and edit.edit_type == "1"
    assert edit.source_prompt == "a cat on a mat" and edit.target_prompt == "a red dog on a mat"
    assert edit.blend_words == ("cat", "dog") and edit.mask.shape == (512, 512) and edit.mask[0, :10].all()
    bare = from_mapping_entry("8", {"original_prompt": "a cat", "editing_prompt": "a dog", "blended_word": "cat"},
                              Path("x.jpg"))
    assert bare.blend_words is None and bare.mask is None and bare.edit_type == ""
    assert without_brackets("a [ red ] car") == "a red car"


@pytest.mark.parametrize("field, value", [("original_prompt", None), ("editing_prompt", 3), ("blended_word", 5),
                                          ("mask", [0, 1.5]), ("mask", [0, 10, 20]), ("mask", {"0": 10}),
                                          ("editing_type_id", True)])
def test_a_malformed_field_is_an_option_error_naming_it(field, value):
    entry = {"original_prompt": "a [cat]", "editing_prompt": "a [dog]", field: value}
    with pytest.raises(OptionError) as caught:
        from_mapping_entry("1", entry, Path("cat.jpg"))
    assert caught.value.field == field


def test_an_empty_mask_list_is_the_border_alone_and_a_negative_start_wraps_as_numpy_indexing():
    """PIE-Bench's mask_decode reads [] as the border it always adds, and indexes with the start as
    given, so -3 counts from the end and the run wraps to the first pixels."""
    size = 8
    border = decode_mask([], size=size)
    assert border.sum() == 4 * size - 4 and border[1:-1, 1:-1].sum() == 0
    wrapped = decode_mask([-3, 5], size=size).reshape(-1)
    assert wrapped[-3:].all() and wrapped[:2].all() and wrapped[size + 1 : 2 * size - 1].sum() == 0
    entry = {"original_prompt": "a [cat]", "editing_prompt": "a [dog]", "mask": []}
    assert from_mapping_entry("1", entry, Path("cat.jpg")).mask.sum() == 4 * 512 - 4
    with pytest.raises(OptionError):
        from_mapping_entry("1", {**entry, "mask": [-512 * 512 - 1, 4]}, Path("cat.jpg"))
