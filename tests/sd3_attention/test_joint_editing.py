"""Prompt-to-Prompt on joint attention, through whole forwards of tiny random SD3 transformers in
float64: rows [unconditional x P | conditional x P], P = source + targets, 333 text keys."""
from types import SimpleNamespace

import pytest
import torch
from diffusers.models.attention_processor import JointAttnProcessor2_0
from joint_helpers import random_inputs, run, t5_like_tokenizer, tiny_transformer

from p2p_real.clip_tokenizer import clip_tokenizer
from p2p_real.editing.joint_editing import (
    JointEditingAttention,
    JointLayers,
    joint_attention_processors,
    joint_editing_processors,
    scaled_map_blocks,
)
from p2p_real.editing.joint_plan import build_joint_plan, joint_attention_plan, sd3_text_parts
from p2p_real.editing.local_blend import blend_masks
from p2p_real.editing.options import EditOptions
from p2p_real.editing.state import EditState

SOURCE, DOG, ZEBRA, FLUFFY = "a photo of a cat", "a photo of a dog", "a photo of a zebra", "a photo of a fluffy cat"
STEPS = 4


@pytest.fixture(scope="module")
def parts():
    return sd3_text_parts(clip_tokenizer(), t5_like_tokenizer())


@pytest.fixture(scope="module")
def model():
    return tiny_transformer(seed=7, num_layers=2, dual=True, qk_norm="rms_norm")


def controlled(model, plan, inputs, step=1, layers=None):
    """One forward under the editing processors at `step`; returns (output, state)."""
    state = EditState("cpu")
    state.begin_step(step)
    layers = layers or JointLayers.for_transformer(model.config)
    output = run(model, joint_editing_processors(model, plan, state, layers), inputs)
    return output, state


def rows(inputs, order):
    """The rows `order` of every input: a batch rearranged, repeated or cut."""
    return {name: value[list(order)] for name, value in inputs.items()}


def test_an_edit_whose_windows_are_closed_is_the_uncontrolled_processor(model, parts):
    plan = build_joint_plan(parts, SOURCE, [DOG, FLUFFY], [EditOptions(cross_replace_steps=0.0,
                                                                      self_replace_steps=0.0)] * 2, STEPS)
    inputs = random_inputs(batch=6, seed=1)
    ours, state = controlled(model, plan, inputs)
    torch.testing.assert_close(ours, run(model, JointAttnProcessor2_0(), inputs), rtol=1e-10, atol=1e-10)
    assert state.layers_seen == 3 and state.map_layers  # two joint blocks and one attn2; maps kept


def test_the_source_row_never_changes_and_an_open_edit_changes_the_targets(model, parts):
    plan = build_joint_plan(parts, SOURCE, [ZEBRA], [EditOptions(cross_replace_steps=1.0,
                                                                self_replace_steps=1.0)], STEPS)
    inputs = random_inputs(batch=4, seed=2)
    ours, _ = controlled(model, plan, inputs)
    plain = run(model, JointAttnProcessor2_0(), inputs)
    torch.testing.assert_close(ours[[0, 1, 2]], plain[[0, 1, 2]], rtol=1e-10, atol=1e-10)  # unconditional, source
    assert (ours[3] - plain[3]).abs().max() > 1e-2


def source_twin(inputs):
    """Rows [u, u, c, c]: a target that is the source, in the same state (the first step of an edit)."""
    return rows(inputs, [0, 0, 1, 1])


@pytest.mark.parametrize("option", [
    EditOptions(kind="reweight", reweights={"cat": 1.0}, cross_replace_steps=1.0, self_replace_steps=1.0),
    EditOptions(kind="replace", cross_replace_steps=1.0, self_replace_steps=1.0),
    EditOptions(kind="refine", cross_replace_steps=0.5, self_replace_steps=(0.0, 0.5)),
], ids=["reweight-1", "replace", "refine"])
def test_a_target_equal_to_the_source_gives_the_source_and_reweight_1_is_the_identity(model, parts, option):
    plan = build_joint_plan(parts, SOURCE, [SOURCE], [option], STEPS)
    inputs = source_twin(random_inputs(batch=2, seed=3))
    ours, _ = controlled(model, plan, inputs)
    torch.testing.assert_close(ours, run(model, JointAttnProcessor2_0(), inputs), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ours[3], ours[2], rtol=1e-10, atol=1e-10)


def test_a_reweight_other_than_1_changes_the_target(model, parts):
    plan = build_joint_plan(parts, SOURCE, [SOURCE], [EditOptions(kind="reweight", reweights={"cat": 2.0},
                                                                  cross_replace_steps=1.0)], STEPS)
    inputs = source_twin(random_inputs(batch=2, seed=3))
    ours, _ = controlled(model, plan, inputs)
    assert (ours[3] - ours[2]).abs().max() > 1e-3


def test_many_targets_in_one_pass_equal_each_alone(model, parts):
    targets = [DOG, FLUFFY, SOURCE]
    options = [EditOptions(cross_replace_steps={"default_": 1.0, "dog": 0.5}, self_replace_steps=0.5),
               EditOptions(cross_replace_steps=0.8, self_replace_steps=(0.25, 1.0), reweights={"fluffy": -1.5}),
               EditOptions(kind="reweight", reweights={"cat": 2.0}, blend_words=("cat", "cat"))]
    inputs = random_inputs(batch=8, seed=4)  # [u_source, u_1, u_2, u_3, c_source, c_1, c_2, c_3]
    together, together_state = controlled(model, build_joint_plan(parts, SOURCE, targets, options, STEPS), inputs)
    for index, (target, option) in enumerate(zip(targets, options), start=1):
        alone_inputs = rows(inputs, [0, index, 4, 4 + index])
        alone, alone_state = controlled(model, build_joint_plan(parts, SOURCE, [target], [option], STEPS),
                                        alone_inputs)
        torch.testing.assert_close(together[[0, index, 4, 4 + index]], alone, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(together_state.cross_maps[[0, index]], alone_state.cross_maps,
                                   rtol=1e-6, atol=1e-9)


def test_localblend_masks_from_the_joint_maps(model, parts):
    plan = build_joint_plan(parts, SOURCE, [DOG], [EditOptions(blend_words=("cat", "dog"), blend_threshold=0.5)],
                            STEPS)
    inputs = random_inputs(batch=4, seed=5, size=(8, 8))
    layers = JointLayers.for_transformer(model.config, map_blocks=[0])
    _, state = controlled(model, plan, inputs, layers=layers)
    maps = state.cross_maps  # (P, 1, rows, columns, keys): heads and blocks averaged
    assert maps.shape == (2, 1, 8, 8, 333) and state.map_layers == {"transformer_blocks.0.attn.processor"}
    text_mass = maps.sum(-1)
    assert (text_mass > 0).all() and (text_mass < 1).all()  # a slice of a softmax over image and text keys
    masks = blend_masks(plan.blend, maps, (16, 16))  # a latent grid twice the token grid (patch size 2)
    assert masks.shape == (1, 1, 16, 16) and set(masks.unique().tolist()) <= {0.0, 1.0}
    assert 0 < masks.mean() < 1
    words = plan.blend.word_weights[0]  # (2, keys): the source's cat, the target's dog, CLIP and T5
    expected = torch.zeros(8, 8, dtype=torch.bool)
    for row, word in zip(maps, words):
        word_map = (row[0] * word).sum(-1)
        word_map = torch.nn.functional.max_pool2d(word_map[None, None], 3, 1, 1)[0, 0]
        expected |= word_map / word_map.max() > 0.5
    assert torch.equal(masks[0, 0].bool(), expected.repeat_interleave(2, 0).repeat_interleave(2, 1))


def test_map_blocks_scale_the_study_choice_and_refuse_blocks_past_the_depth(model):
    assert scaled_map_blocks(24) == {5, 7, 8, 9, 10}
    assert scaled_map_blocks(38) == {8, 11, 13, 14, 16}
    assert scaled_map_blocks(2) == {0, 1}
    with pytest.raises(ValueError, match=r"blocks \[2\] are outside the transformer's 2 blocks"):
        JointLayers.for_transformer(model.config, map_blocks=[0, 2])
    with pytest.raises(ValueError, match="do not fill a 5 x 5 grid"):
        JointLayers(frozenset({0}), grid=(5, 5)).grid_of(64)


def test_the_model_level_entry_points_read_the_models_tokenizers_and_transformer(model, parts):
    sd3_like = SimpleNamespace(text=SimpleNamespace(tokenizer=parts[0].tokenizer, tokenizer_3=parts[1].tokenizer),
                               denoiser=model)
    plan = joint_attention_plan(sd3_like, SOURCE, [ZEBRA], [EditOptions()], STEPS)
    expected = build_joint_plan(parts, SOURCE, [ZEBRA], [EditOptions()], STEPS)
    assert torch.equal(plan.token_maps, expected.token_maps)
    processors = joint_attention_processors(sd3_like, plan, EditState("cpu"))
    assert list(processors) == list(model.attn_processors)
    assert processors["transformer_blocks.0.attn2.processor"].joint is False
    assert processors["transformer_blocks.1.attn.processor"].stores  # scaled_map_blocks(2) == {0, 1}


def test_in_float16_the_decomposed_joint_softmax_is_as_close_as_the_fused_kernel(parts):
    """The half-precision path (the slice in float32, the output in the model's dtype): with closed
    windows it computes, in float16, what diffusers' processor computes in float16, to float16's
    rounding, and an open edit stays finite. (Both are ~3% off float64 on this tiny random model,
    which amplifies rounding.)"""
    half = tiny_transformer(seed=8, num_layers=2, dual=True, qk_norm="rms_norm").half()
    inputs = {name: value.half() for name, value in random_inputs(batch=4, seed=9).items()}
    closed = build_joint_plan(parts, SOURCE, [DOG], [EditOptions(cross_replace_steps=0.0, self_replace_steps=0.0)],
                              STEPS)
    ours, state = controlled(half, closed, inputs)
    plain = run(half, JointAttnProcessor2_0(), inputs)
    assert ours.dtype == torch.float16 and state.cross_maps.dtype == torch.float32
    assert ((ours - plain).float().abs().mean() / plain.float().abs().mean()) < 3e-3
    opened = build_joint_plan(parts, SOURCE, [DOG], [EditOptions(cross_replace_steps=1.0, self_replace_steps=1.0)],
                              STEPS)
    assert controlled(half, opened, inputs)[0].isfinite().all()


def test_blocks_that_neither_edit_nor_keep_maps_stay_on_plain_sdpa(model, parts):
    sliced = []

    class Recording(JointEditingAttention):  # records which processors form the T2I slice
        def edit_cross(self, *arguments):
            sliced.append(self.layer)
            return super().edit_cross(*arguments)

    plan = build_joint_plan(parts, SOURCE, [ZEBRA], [EditOptions(cross_replace_steps=1.0, self_replace_steps=1.0)],
                            STEPS)
    layers = JointLayers.for_transformer(model.config, map_blocks=[1], edit_blocks=[1])
    state = EditState("cpu")
    processors = {name: Recording(plan, state, name, layers) for name in model.attn_processors}
    run(model, processors, random_inputs(batch=4, seed=6))
    assert sliced == ["transformer_blocks.1.attn.processor"]
    assert state.layers_seen == 3
