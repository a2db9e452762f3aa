import pytest
import torch

from p2p_real.editing.alignment import (
    equalizer,
    global_alignment,
    refinement_mapper,
    replacement_mapper,
    token_positions,
)
from p2p_real.errors import PromptError

# CLIP BPE: "cat" is 1 token, "capybara" 3 (1289, 88, 19345), "pomeranian" 2.


def test_token_positions_count_multi_token_words(tiny_model):
    tokenizer = tiny_model.tokenizer
    assert token_positions(tokenizer, "a capybara on a mat", "capybara") == [2, 3, 4]
    assert token_positions(tokenizer, "a capybara on a mat", "mat") == [7]
    assert token_positions(tokenizer, "a cat and a cat", "cat") == [2, 5]
    with pytest.raises(PromptError, match="'dog' is not in the prompt 'a cat on a mat'"):
        token_positions(tokenizer, "a cat on a mat", "dog")


def test_replacement_mapper_for_words_of_different_token_counts(tiny_model):
    mapper = replacement_mapper(tiny_model.tokenizer, "a cat on a mat", "a capybara on a mat", 77)
    # Hand-computed: source tokens  <s> a cat on a mat </s> pad...  at 0 1 2 3 4 5 6 7...
    #                target tokens  <s> a capy ba ra on a mat </s> pad... at 0 1 2 3 4 5 6 7 8 9...
    expected = torch.zeros(77, 77)
    expected[0, 0] = expected[1, 1] = 1
    expected[2, [2, 3, 4]] = 1 / 3  # cat -> each capybara token gets a third
    expected[3, 5] = expected[4, 6] = expected[5, 7] = 1  # on a mat
    for offset in range(77 - 8):  # end token and padding stay aligned: source 6+o -> target 8+o
        expected[6 + offset, 8 + offset] = 1
    assert torch.equal(mapper, expected)
    # The reference's tail wrote mapper[j, j]: target "on" (5) would read source 5 ("mat").
    assert mapper[5, 5] == 0 and mapper[3, 5] == 1


def test_replacement_mapper_two_token_word_in_the_source(tiny_model):
    mapper = replacement_mapper(tiny_model.tokenizer, "a pomeranian dog", "a cat dog", 77)
    # source: <s> a pomer anian dog </s>  target: <s> a cat dog </s>
    assert mapper[2, 2] == 1 and mapper[3, 2] == 1  # both source tokens feed "cat" (summed, as in the paper)
    assert mapper[4, 3] == 1 and mapper[5, 4] == 1 and mapper[6, 5] == 1
    assert mapper[:, 3].sum() == 1


def test_replace_needs_equal_word_counts(tiny_model):
    with pytest.raises(PromptError, match="same number of words.*refine"):
        replacement_mapper(tiny_model.tokenizer, "a cat", "a big cat", 77)


def test_global_alignment_by_hand():
    # source a b c, target a x b c: x is new, the rest align.
    assert global_alignment([1, 2, 3], [1, 9, 2, 3]) == [0, -1, 1, 2]
    assert global_alignment([1, 2, 3], [1, 2, 3]) == [0, 1, 2]
    assert global_alignment([1, 2, 3, 4], [1, 4]) == [0, 3]


def test_refinement_mapper_adds_a_phrase(tiny_model):
    indices, alphas = refinement_mapper(tiny_model.tokenizer, "a cat on a mat", "a fluffy cat on a mat", 77)
    # source <s> a cat on a mat </s> (0..6); target <s> a fluffy cat on a mat </s> (0..7)
    assert indices[:8].tolist() == [0, 1, 0, 2, 3, 4, 5, 6]
    assert alphas[:8].tolist() == [1, 1, 0, 1, 1, 1, 1, 1]
    assert indices[8:].tolist() == list(range(8, 77)) and alphas[8:].eq(1).all()  # padding p -> p


def test_equalizer(tiny_model):
    scale = equalizer(tiny_model.tokenizer, "a fluffy capybara", {"capybara": 2.0, "fluffy": -1.0}, 77)
    assert scale[[3, 4, 5]].tolist() == [2, 2, 2] and scale[2] == -1 and scale[[0, 1, 6]].eq(1).all()
    with pytest.raises(PromptError, match="between -2 and 2"):
        equalizer(tiny_model.tokenizer, "a cat", {"cat": 3.0}, 77)
