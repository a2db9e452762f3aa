import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from sampling_helpers import run_plan

from p2p_real.attention import FusedAttention
from p2p_real.editing.attention import EditingAttention
from p2p_real.editing.controlled import controlled
from p2p_real.editing.edit import edit
from p2p_real.editing.options import EditOptions
from p2p_real.editing.plan import build_plan
from p2p_real.editing.state import EditState
from p2p_real.errors import PromptError
from p2p_real.images import load_image
from p2p_real.pipeline import invert
from p2p_real.sampling import ddim_sample

SOURCE = "a close-up photo of a tabby cat"
DOG = "a close-up photo of a tabby dog"
STEPS = 6


@pytest.fixture(scope="module")
def inversion(tiny_model):
    photo = load_image("data/photos/chelsea.jpg", tiny_model.resolution)
    [result] = invert(tiny_model, [photo], [SOURCE], method="ddim", num_steps=STEPS)
    return result




def test_target_equal_to_source_reproduces_the_reconstruction(tiny_model, inversion):
    result = edit(tiny_model, inversion, SOURCE, EditOptions(kind="replace"))
    assert torch.equal(result.edited, result.reconstruction)
    # and the source branch is the inversion's own reconstruction (same sampling, other batch)
    assert (result.reconstruction.int() - inversion.reconstruction.int()).abs().max() <= 2


def test_a_word_swap_changes_the_target_only(tiny_model, inversion):
    result = edit(tiny_model, inversion, DOG)
    assert result.kind == "replace"
    assert (result.edited.float() - result.reconstruction.float()).abs().mean() > 1.0
    assert (result.reconstruction.int() - inversion.reconstruction.int()).abs().max() <= 2


def test_many_targets_in_one_pass_equal_each_edit_alone(tiny_model, inversion):
    targets = [DOG, "a close-up photo of a fluffy tabby cat", SOURCE]
    options = [EditOptions(blend_words=("cat", "dog"), blend_threshold=0.9), EditOptions(cross_replace_steps=0.6),
               EditOptions(reweights={"tabby": 2.0}, self_replace_steps=(0.2, 0.5))]
    together = edit(tiny_model, inversion, targets, options)
    assert [result.kind for result in together] == ["replace", "refine", "reweight"]
    assert together[0].mask is not None and together[1].mask is None
    for target, option, batched in zip(targets, options, together):
        alone = edit(tiny_model, inversion, target, option)
        # A batch of 4 prompts is another matmul blocking than a batch of 2: float32 rounding only.
        assert (alone.edited.int() - batched.edited.int()).abs().max() <= 2
        assert (alone.edited.float() - batched.edited.float()).abs().mean() < 0.05
        torch.testing.assert_close(alone.cross_maps, batched.cross_maps, rtol=1e-4, atol=1e-5)
    assert not torch.equal(together[0].edited, together[1].edited)


@pytest.fixture(scope="module", params=["tiny_model", "tiny_sdxl_model"])
def family_inversion(request):
    """(model, DDIM inversion of the photo) for each model family, SD v1 and SDXL."""
    model = request.getfixturevalue(request.param)
    photo = load_image("data/photos/chelsea.jpg", model.resolution)
    [result] = invert(model, [photo], [SOURCE], method="ddim", num_steps=STEPS)
    return model, result


def test_a_reweight_of_one_is_no_edit(family_inversion):
    model, inversion = family_inversion
    plain = run_plan(model, inversion, SOURCE, EditOptions(kind="replace")).latents
    reweighted = run_plan(model, inversion, SOURCE, EditOptions(reweights={"tabby": 1.0})).latents
    torch.testing.assert_close(reweighted, plain, rtol=0, atol=0)
    swapped = run_plan(model, inversion, DOG, EditOptions()).latents
    swapped_and_one = run_plan(model, inversion, DOG, EditOptions(reweights={"dog": 1.0})).latents
    torch.testing.assert_close(swapped_and_one, swapped, rtol=0, atol=0)
    doubled = run_plan(model, inversion, SOURCE, EditOptions(reweights={"tabby": 2.0})).latents
    assert (doubled[1] - plain[1]).abs().max() > 1e-3  # a real factor does change the target


def test_local_blend_keeps_the_source_outside_the_mask(tiny_model, inversion):
    options = EditOptions(blend_words=("cat", "dog"), blend_threshold=0.95)  # random attention is nearly flat
    sampled = run_plan(tiny_model, inversion, DOG, options)
    latents, mask = sampled.latents, sampled.masks[0]  # (1, h, w)
    assert 0 < mask.mean() < 1, "the test needs a mask with both inside and outside"
    outside = (mask == 0).expand_as(latents[1])
    assert torch.equal(latents[1][outside], latents[0][outside])
    assert (latents[1][~outside] - latents[0][~outside]).abs().max() > 1e-3
    assert sampled.cross_maps.shape[2:4] == (8, 8)  # the tiny model's coarsest attention level


def test_no_replacement_steps_equals_plain_generation(tiny_model, inversion):
    latents = run_plan(tiny_model, inversion, DOG, EditOptions(cross_replace_steps=0.0, self_replace_steps=0.0)).latents
    plain = ddim_sample(tiny_model.denoise, inversion.noise_latents[None], tiny_model.schedule(STEPS),
                        tiny_model.embed([DOG]), inversion.null_text_embeddings[:, None], inversion.guidance_scale)
    assert (latents[1] - plain[0]).norm() / plain.norm() < 1e-4


def double_attention(model, layer):
    block = model.unet.down_blocks[0].attentions[0].transformer_blocks[0]
    return getattr(block, layer).double()


@pytest.mark.parametrize("layer", ["attn1", "attn2"])
def test_fused_and_editing_attention_equal_diffusers_attention(tiny_model, generator, layer):
    """FusedAttention is SDPA; EditingAttention's explicit softmax(QK^T/sqrt(d)) V path, under a plan
    that changes nothing (a re-weight by 1), is the same attention: float64, to 1e-10."""
    attention = double_attention(tiny_model, layer)
    hidden = torch.randn(4, 64, attention.to_q.in_features, generator=generator, dtype=torch.float64)  # P = 2
    context = torch.randn(4, 77, 32, generator=generator, dtype=torch.float64) if layer == "attn2" else None
    plan = build_plan(tiny_model, SOURCE, [SOURCE],
                      [EditOptions(reweights={"tabby": 1.0}, self_replace_steps=0.0, cross_replace_steps=0.0)], STEPS)
    try:
        expected = AttnProcessor2_0()(attention, hidden, context)
        fused = FusedAttention()(attention, hidden, context)
        state = EditState("cpu")
        editing = EditingAttention(plan.to("cpu"), state,
                                   "down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor")(
            attention, hidden, context)
    finally:
        attention.float()
    torch.testing.assert_close(fused, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(editing, expected, rtol=1e-10, atol=1e-10)
    assert state.layers_seen == 1


@pytest.mark.parametrize("weight_steps", [(0.0, 1.0), (0.5, 1.0)])
def test_self_attention_replacement_is_the_sources_probabilities_on_the_targets_values(tiny_model, generator,
                                                                                      weight_steps):
    attention = double_attention(tiny_model, "attn1")
    hidden = torch.randn(6, 64, attention.to_q.in_features, generator=generator, dtype=torch.float64)  # P = 3
    options = [EditOptions(self_replace_steps=weight_steps, reweights={"tabby": 1.0}),
               EditOptions(self_replace_steps=0.0, reweights={"tabby": 1.0})]
    plan = build_plan(tiny_model, SOURCE, [SOURCE, SOURCE], options, 2).to("cpu")
    state = EditState("cpu")
    state.begin_step(0)
    try:
        replaced = EditingAttention(plan, state, "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor")(
            attention, hidden)
        plain = FusedAttention()(attention, hidden)
        heads = attention.heads
        q, k, v = ((hidden @ w.T).unflatten(-1, (heads, -1)).transpose(1, 2)
                   for w in (attention.to_q.weight, attention.to_k.weight, attention.to_v.weight))
        # row 3: source
        source_probabilities = torch.softmax(q[3] @ k[3].transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
        expected_first = attention.to_out[0]((source_probabilities @ v[4]).transpose(0, 1).flatten(1))  # before to_out
    finally:
        attention.float()
    weight = 1.0 if weight_steps[0] == 0 else 0.0  # step 0 of 2 lies in [int(2 s0), int(2 s1))
    torch.testing.assert_close(replaced[:4], plain[:4], rtol=0, atol=0)  # unconditional rows and the source
    torch.testing.assert_close(replaced[4], weight * expected_first + (1 - weight) * plain[4], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(replaced[5], plain[5], rtol=1e-12, atol=1e-12)  # the second target's window is empty


def test_processors_are_restored_even_after_an_error(tiny_model, generator):
    before = dict(tiny_model.unet.attn_processors)
    plan = build_plan(tiny_model, SOURCE, [DOG], [EditOptions()], STEPS)
    with pytest.raises(ValueError, match="boom"):
        with controlled(tiny_model, plan):
            assert isinstance(next(iter(tiny_model.unet.attn_processors.values())), EditingAttention)
            raise ValueError("boom")
    after = tiny_model.unet.attn_processors
    assert after.keys() == before.keys() and all(after[name] is before[name] for name in before)
    assert not tiny_model.runner.in_block
    tiny_model.denoise(torch.randn(1, 4, 16, 16, generator=generator), 10, tiny_model.embed(["x"]))  # usable again


def test_the_plain_denoise_refuses_to_run_inside_an_edit(tiny_model, generator):
    # On a GPU, model.denoise replays a graph captured with the plain processors: inside an edit it
    # would silently ignore the plan. It must fail on every device, so CPU tests catch the mistake.
    plan = build_plan(tiny_model, SOURCE, [DOG], [EditOptions()], STEPS)
    with pytest.raises(RuntimeError, match="use the denoise it yields"):
        with controlled(tiny_model, plan):
            tiny_model.denoise(torch.randn(2, 4, 16, 16, generator=generator), 10, tiny_model.embed(["x", "y"]))


def test_an_edit_that_reaches_no_attention_layer_fails_loudly(tiny_model):
    # The reference's hooks matched a class name that modern diffusers no longer has, so its
    # "edits" silently equalled plain generation; ours must refuse instead.
    plan = build_plan(tiny_model, SOURCE, [DOG], [EditOptions()], STEPS)
    with pytest.raises(RuntimeError, match="no attention layer reached the edit"):
        with controlled(tiny_model, plan):
            pass  # as if no processor had been called


def test_prompt_errors_name_the_word_and_the_prompt(tiny_model, inversion):
    with pytest.raises(PromptError, match="tokens long"):
        edit(tiny_model, inversion, "a close-up photo of a " + "very " * 80 + "tabby dog")
    with pytest.raises(PromptError, match="'fluffy' is not in the prompt 'a close-up photo of a tabby dog'"):
        edit(tiny_model, inversion, DOG, EditOptions(reweights={"fluffy": 2.0}))
    with pytest.raises(PromptError, match="same number of words"):
        edit(tiny_model, inversion, "a photo of a big dog", EditOptions(kind="replace"))
    with pytest.raises(ValueError, match="2 targets but 3 EditOptions"):
        edit(tiny_model, inversion, [DOG, SOURCE], [EditOptions()] * 3)


def test_v_prediction_models_edit_through_the_same_path(tiny_v_model):
    photo = load_image("data/photos/chelsea.jpg", tiny_v_model.resolution)
    [inversion] = invert(tiny_v_model, [photo], [SOURCE], method="null-text", num_steps=3)
    same = edit(tiny_v_model, inversion, SOURCE, EditOptions(kind="replace"))
    assert torch.equal(same.edited, same.reconstruction)
    assert (same.reconstruction.int() - inversion.reconstruction.int()).abs().max() <= 2
    swapped = edit(tiny_v_model, inversion, DOG)
    assert (swapped.edited.float() - swapped.reconstruction.float()).abs().mean() > 0.5
