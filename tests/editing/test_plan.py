"""The plan's per-step, per-token windows, checked against values written out by hand from the
reference's rule (google/prompt-to-prompt, ptp_utils.get_time_words_attention_alpha): rows
[int(s * (T + 1)), int(e * (T + 1))) are 1, and a float b means (0, b)."""
import pytest
import torch

from p2p_real.editing.alignment import token_positions
from p2p_real.editing.options import EditOptions
from p2p_real.editing.plan import build_plan
from p2p_real.editing.schedules import cross_replace_alphas, self_replace_range
from p2p_real.errors import PromptError

SOURCE = "a close-up photo of a tabby cat"
DOG = "a close-up photo of a tabby dog"


def rows_set(alphas: torch.Tensor, position: int) -> list[int]:
    return [row for row in range(alphas.shape[0]) if alphas[row, position] == 1]


@pytest.mark.parametrize("steps, window, expected_rows", [
    (50, 0.4, range(0, 20)),  # int(0.4 * 51) = int(20.4) = 20
    (10, 0.4, range(0, 4)),  # int(4.4) = 4
    (10, 1.0, range(0, 11)),  # every row, the extra (T + 1)-th included
    (50, 0.8, range(0, 40)),  # int(40.8)
    (10, (0.3, 0.7), range(3, 7)),  # int(3.3), int(7.7)
    (50, 0.0, range(0)),
    (9, 0.5, range(0, 5)),  # int(5.0)
])
def test_cross_replace_windows_round_as_the_reference(tiny_model, steps, window, expected_rows):
    alphas = cross_replace_alphas(tiny_model.tokenizer, DOG, steps, window, 77)
    assert alphas.shape == (steps + 1, 77)
    for position in (0, 3, 76):
        assert rows_set(alphas, position) == list(expected_rows)


def test_a_words_own_window_overrides_the_default_on_its_tokens_only(tiny_model):
    alphas = cross_replace_alphas(tiny_model.tokenizer, DOG, 10, {"default_": 0.4, "dog": (0.2, 0.9)}, 77)
    dog = token_positions(tiny_model.tokenizer, DOG, "dog")
    assert dog == [9]  # <start> a close - up photo of a tabby dog: CLIP splits "close-up" in three
    for position in range(77):
        expected = range(2, 9) if position in dog else range(0, 4)  # int(2.2)=2, int(9.9)=9; default int(4.4)=4
        assert rows_set(alphas, position) == list(expected), position
    only_words = cross_replace_alphas(tiny_model.tokenizer, DOG, 10, {"dog": 0.5}, 77)  # no default: (0, 1)
    assert rows_set(only_words, 1) == list(range(11)) and rows_set(only_words, dog[0]) == list(range(5))


@pytest.mark.parametrize("steps, window, expected", [(50, 0.6, range(0, 30)), (10, 0.25, range(0, 2)),
                                                     (10, (0.35, 0.75), range(3, 7))])
def test_self_replace_steps_are_int_of_T_times_the_fraction(steps, window, expected):
    assert self_replace_range(steps, window) == expected  # int(T s0) .. int(T s1), not T + 1


def test_a_plan_holds_one_row_per_target_with_its_own_settings(tiny_model):
    options = [EditOptions(cross_replace_steps=0.5, self_replace_steps=0.2),
               EditOptions(reweights={"fluffy": 2.0}, self_replace_steps=(0.4, 0.8), blend_words=("cat", "cat"))]
    plan = build_plan(tiny_model, SOURCE, [DOG, "a close-up photo of a fluffy tabby cat"], options, 10)
    assert plan.kinds == ("replace", "refine")
    assert plan.cross_alphas.shape == (11, 2, 77)
    assert (rows_set(plan.cross_alphas[:, 0], 1) == list(range(5))
            and rows_set(plan.cross_alphas[:, 1], 1) == list(range(4)))
    assert plan.self_weights.shape == (10, 2)
    assert plan.self_weights[:, 0].nonzero().flatten().tolist() == [0, 1]
    assert plan.self_weights[:, 1].nonzero().flatten().tolist() == [4, 5, 6, 7]
    fluffy = token_positions(tiny_model.tokenizer, "a close-up photo of a fluffy tabby cat", "fluffy")
    assert plan.equalizer[0].eq(1).all() and plan.equalizer[1, fluffy].eq(2).all()
    # refine: one-hot columns, 0 alpha on the added word; replace: the swap's own map, alpha 1
    assert plan.token_alphas[1, fluffy].eq(0).all() and plan.token_alphas[0].eq(1).all()
    assert plan.token_maps[1].sum(0).eq(1).all()
    assert plan.blend.enabled == (False, True) and plan.blend.word_weights[0].eq(0).all()


def test_plan_errors_name_the_word(tiny_model):
    with pytest.raises(PromptError, match="'horse' is not in the prompt"):
        build_plan(tiny_model, SOURCE, [DOG], [EditOptions(blend_words=("horse", "dog"))], 10)
    with pytest.raises(PromptError, match="needs words to re-weight"):
        build_plan(tiny_model, SOURCE, [SOURCE], [EditOptions()], 10)
