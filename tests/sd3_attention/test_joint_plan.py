"""The two-tokenizer plan of SD3's 333 text keys (77 CLIP + 256 T5): each part aligned on its own
tokenizer, positions written out by hand."""
import pytest
import torch
from joint_helpers import t5_like_tokenizer

from p2p_real.clip_tokenizer import clip_tokenizer
from p2p_real.editing.alignment import first_word_position, replacement_mapper, token_positions, word_tokens
from p2p_real.editing.joint_plan import TextPart, build_joint_plan, sd3_text_parts
from p2p_real.editing.options import EditOptions
from p2p_real.errors import PromptError

SOURCE, DOG, ZEBRA = "a photo of a cat", "a photo of a dog", "a photo of a zebra"
CLIP, KEYS = 77, 333


@pytest.fixture(scope="module")
def parts():
    return sd3_text_parts(clip_tokenizer(), t5_like_tokenizer())


def test_t5_words_start_at_position_0_and_clip_words_at_1(parts):
    clip, t5 = parts[0].tokenizer, parts[1].tokenizer
    assert (first_word_position(clip), first_word_position(t5)) == (1, 0)
    assert word_tokens(t5, ZEBRA) == [[0], [1], [2], [3], [4, 5, 6, 7, 8, 9]]  # "▁", z, e, b, r, a
    assert token_positions(clip, SOURCE, "cat") == [5] and token_positions(t5, SOURCE, "cat") == [4]


def test_a_word_swap_is_block_diagonal_with_each_part_aligned_on_its_tokenizer(parts):
    plan = build_joint_plan(parts, SOURCE, [ZEBRA], [EditOptions()], 10)
    token_map = plan.token_maps[0]
    assert token_map.shape == (KEYS, KEYS) and plan.kinds == ("replace",)
    assert torch.equal(token_map[:CLIP, :CLIP], replacement_mapper(parts[0].tokenizer, SOURCE, ZEBRA, CLIP))
    assert token_map[:CLIP, CLIP:].abs().sum() == 0 and token_map[CLIP:, :CLIP].abs().sum() == 0
    t5_map = token_map[CLIP:, CLIP:]
    for position in range(4):  # a photo of a: one to one, from position 0 (no start token in T5)
        assert t5_map[position, position] == 1 and t5_map[position].sum() == 1
    assert torch.equal(t5_map[4, 4:10], torch.full((6,), 1 / 6))  # cat -> 6 zebra tokens, 1/6 each
    assert t5_map[5, 10] == 1 and t5_map[6, 11] == 1 and t5_map[255, 255] == 0  # </s> and padding, shifted
    assert t5_map[0, 0] == 1 and t5_map[:, 0].sum() == 1  # no start-token entry added on T5's first word


def test_refine_aligns_each_part_and_marks_new_tokens(parts):
    fluffy = "a photo of a fluffy cat"
    plan = build_joint_plan(parts, SOURCE, [fluffy], [EditOptions()], 10)
    alphas = plan.token_alphas[0]
    assert plan.kinds == ("refine",)
    new_clip = token_positions(parts[0].tokenizer, fluffy, "fluffy")
    assert alphas[:CLIP].eq(0).nonzero().flatten().tolist() == new_clip
    assert alphas[CLIP:].eq(0).nonzero().flatten().tolist() == list(range(4, 11))  # "▁", f, l, u, f, f, y
    t5_map = plan.token_maps[0, CLIP:, CLIP:]
    assert t5_map[4, 11] == 1 and t5_map[5, 12] == 1  # cat (source 4) -> target 11, </s> 5 -> 12


def test_reweights_windows_and_blend_words_land_on_both_parts(parts):
    option = EditOptions(kind="reweight", reweights={"cat": 2.0}, cross_replace_steps={"default_": 0.4, "cat": 0.8},
                         blend_words=("cat", "cat"))
    plan = build_joint_plan(parts, SOURCE, [SOURCE], [option], 10)
    cat = [5, CLIP + 4]
    assert plan.equalizer[0].ne(1).nonzero().flatten().tolist() == cat and plan.equalizer[0, cat].eq(2).all()
    assert plan.cross_alphas.shape == (11, 1, KEYS)
    assert plan.cross_alphas[:, 0, cat].sum(0).tolist() == [8, 8]  # int(0.8 * 11) rows
    assert plan.cross_alphas[:, 0, CLIP + 1].sum() == 4  # int(0.4 * 11)
    assert plan.blend.word_weights.shape == (1, 2, KEYS)
    assert plan.blend.word_weights[0, 0].nonzero().flatten().tolist() == cat


def test_many_targets_stack_and_a_part_without_tokenizer_is_left_alone(parts):
    without_t5 = (parts[0], TextPart(None, 256, "T5"))
    plan = build_joint_plan(without_t5, SOURCE, [DOG, ZEBRA], [EditOptions(blend_words=("cat", "dog")),
                                                              EditOptions()], 10)
    assert plan.token_maps.shape == (2, KEYS, KEYS)
    assert torch.equal(plan.token_maps[:, CLIP:, CLIP:], torch.eye(256).expand(2, -1, -1))
    assert plan.blend.word_weights[:, :, CLIP:].abs().sum() == 0 and plan.blend.enabled == (True, False)


def test_a_prompt_longer_than_a_part_is_refused_by_name(parts):
    short_t5 = (parts[0], TextPart(parts[1].tokenizer, 4, "T5"))
    with pytest.raises(PromptError, match="is 6 T5 tokens, over the 4"):
        build_joint_plan(short_t5, SOURCE, [DOG], [EditOptions()], 10)
