import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from p2p_real.editing.attention import ControlledAttention, controlled
from p2p_real.editing.controllers import AttentionStore
from p2p_real.editing.edit import build_blend, build_controller, edit
from p2p_real.editing.options import EditOptions
from p2p_real.editing.sampler import edit_sample
from p2p_real.images import load_image
from p2p_real.inversion.invert import invert
from p2p_real.sampling import ddim_sample

SOURCE = "a close-up photo of a tabby cat"
STEPS = 6


@pytest.fixture(scope="module")
def inversion(tiny_model):
    photo = load_image("data/photos/chelsea.jpg", tiny_model.resolution)
    [result] = invert(tiny_model, [photo], [SOURCE], method="ddim", num_steps=STEPS)
    return result


def run_branches(model, inversion, target, options):
    controller, _ = build_controller(model, inversion.prompt, target, inversion.num_steps, options)
    blend = build_blend(model, inversion.prompt, target, inversion.num_steps, options)
    latents = edit_sample(
        model.unet, model.denoise, inversion.noise_latents, inversion.null_text_embeddings,
        model.embed([inversion.prompt, target]), model.schedule(inversion.num_steps), inversion.guidance_scale,
        controller, blend,
    )
    return latents, controller, blend


def test_target_equal_to_source_reproduces_the_reconstruction(tiny_model, inversion):
    result = edit(tiny_model, inversion, SOURCE, EditOptions(kind="replace"))
    assert torch.equal(result.edited, result.reconstruction)
    # and the source branch is the inversion's own reconstruction (same sampling, other batch)
    assert (result.reconstruction.int() - inversion.reconstruction.int()).abs().max() <= 2


def test_a_word_swap_changes_the_target_only(tiny_model, inversion):
    result = edit(tiny_model, inversion, "a close-up photo of a tabby dog")
    assert result.kind == "replace"
    assert (result.edited.float() - result.reconstruction.float()).abs().mean() > 1.0
    assert (result.reconstruction.int() - inversion.reconstruction.int()).abs().max() <= 2


def test_a_reweight_of_one_is_no_edit(tiny_model, inversion):
    plain, _, _ = run_branches(tiny_model, inversion, SOURCE, EditOptions(kind="replace"))
    reweighted, _, _ = run_branches(tiny_model, inversion, SOURCE, EditOptions(reweights={"tabby": 1.0}))
    torch.testing.assert_close(reweighted, plain, rtol=0, atol=0)
    target = "a close-up photo of a tabby dog"
    swapped, _, _ = run_branches(tiny_model, inversion, target, EditOptions())
    swapped_and_one, _, _ = run_branches(tiny_model, inversion, target, EditOptions(reweights={"dog": 1.0}))
    torch.testing.assert_close(swapped_and_one, swapped, rtol=0, atol=0)
    doubled, _, _ = run_branches(tiny_model, inversion, SOURCE, EditOptions(reweights={"tabby": 2.0}))
    assert (doubled[1] - plain[1]).abs().max() > 1e-3  # a real factor does change the target


def test_local_blend_keeps_the_source_outside_the_mask(tiny_model, inversion):
    options = EditOptions(blend_words=("cat", "dog"), blend_threshold=0.95)  # random attention is nearly flat
    latents, controller, blend = run_branches(tiny_model, inversion, "a close-up photo of a tabby dog", options)
    mask = blend.last_mask[1]  # (1, h, w)
    assert 0 < mask.mean() < 1, "the test needs a mask with both inside and outside"
    outside = (mask == 0).expand_as(latents[1])
    assert torch.equal(latents[1][outside], latents[0][outside])
    assert (latents[1][~outside] - latents[0][~outside]).abs().max() > 1e-3
    assert controller.cross_maps.shape[2:4] == (8, 8)  # the tiny model's coarsest attention level


def test_no_replacement_steps_equals_plain_generation(tiny_model, inversion):
    target = "a close-up photo of a tabby dog"
    latents, _, _ = run_branches(tiny_model, inversion, target, EditOptions(cross_replace_steps=0.0, self_replace_steps=0.0))
    plain = ddim_sample(
        tiny_model.denoise, inversion.noise_latents[None], tiny_model.embed([target]),
        inversion.null_text_embeddings[:, None], tiny_model.schedule(STEPS), inversion.guidance_scale,
    )
    assert (latents[1] - plain[0]).norm() / plain.norm() < 1e-4


class Recorder:
    """Asks for every layer's probabilities and keeps them, unchanged."""

    def __init__(self):
        self.seen = []

    def wants(self, is_cross, place, num_queries):
        return True

    def __call__(self, probabilities, is_cross, place, num_queries):
        self.seen.append(probabilities)
        return probabilities


@pytest.mark.parametrize("layer", ["attn1", "attn2"])
def test_probabilities_are_softmax_of_scaled_dot_products(tiny_model, generator, layer):
    attention = tiny_model.unet.down_blocks[0].attentions[0].transformer_blocks[0]
    attention = getattr(attention, layer)
    hidden = torch.randn(2, 256, attention.to_q.in_features, generator=generator, dtype=torch.float64)
    context = torch.randn(2, 77, 32, generator=generator, dtype=torch.float64) if layer == "attn2" else None
    attention.double()
    try:
        recorder = Recorder()
        explicit = ControlledAttention(recorder, "down")(attention, hidden, context)
        fast = AttnProcessor2_0()(attention, hidden, context)
        keys_from = hidden if context is None else context
        heads = attention.heads
        q = (hidden @ attention.to_q.weight.T).unflatten(-1, (heads, -1)).transpose(1, 2)
        k = (keys_from @ attention.to_k.weight.T).unflatten(-1, (heads, -1)).transpose(1, 2)
        expected = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
    finally:
        attention.float()
    [seen] = recorder.seen
    torch.testing.assert_close(seen, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(explicit, fast, rtol=1e-10, atol=1e-10)


def test_processors_are_restored_even_after_an_error(tiny_model, generator):
    before = dict(tiny_model.unet.attn_processors)

    class Failing(AttentionStore):
        def __call__(self, *args):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        with controlled(tiny_model.unet, Failing(resolution=8)) as controller:
            controller.wants = lambda *args: True
            tiny_model.denoise(torch.randn(1, 4, 16, 16, generator=generator), 10, tiny_model.embed(["x"]))
    after = tiny_model.unet.attn_processors
    assert after.keys() == before.keys() and all(after[name] is before[name] for name in before)
    assert all(processor.controller is None for processor in after.values())


def test_prompt_errors_name_the_word_and_the_prompt(tiny_model, inversion):
    from p2p_real.errors import PromptError

    with pytest.raises(PromptError, match="tokens long"):
        edit(tiny_model, inversion, "a close-up photo of a " + "very " * 80 + "tabby dog")
    with pytest.raises(PromptError, match="'fluffy' is not in the prompt 'a close-up photo of a tabby dog'"):
        edit(tiny_model, inversion, "a close-up photo of a tabby dog", EditOptions(reweights={"fluffy": 2.0}))
    with pytest.raises(PromptError, match="same number of words"):
        edit(tiny_model, inversion, "a photo of a big dog", EditOptions(kind="replace"))


def test_an_edit_that_reaches_no_attention_layer_fails_loudly(tiny_model, inversion):
    # The reference's hooks matched a class name that modern diffusers no longer has, so its
    # "edits" silently equalled plain generation; ours must refuse instead.
    controller, _ = build_controller(tiny_model, SOURCE, "a close-up photo of a tabby dog", STEPS, EditOptions())
    controller.wants = lambda *args: False  # as if no layer were hooked
    with pytest.raises(RuntimeError, match="no attention layer reached the controller"):
        edit_sample(tiny_model.unet, tiny_model.denoise_eager, inversion.noise_latents, inversion.null_text_embeddings,
                    tiny_model.embed([SOURCE, "a close-up photo of a tabby dog"]), tiny_model.schedule(STEPS),
                    inversion.guidance_scale, controller)


def test_v_prediction_models_edit_through_the_same_path(tiny_v_model):
    photo = load_image("data/photos/chelsea.jpg", tiny_v_model.resolution)
    [inversion] = invert(tiny_v_model, [photo], [SOURCE], method="null-text", num_steps=3)
    same = edit(tiny_v_model, inversion, SOURCE, EditOptions(kind="replace"))
    assert torch.equal(same.edited, same.reconstruction)
    assert (same.reconstruction.int() - inversion.reconstruction.int()).abs().max() <= 2
    swapped = edit(tiny_v_model, inversion, "a close-up photo of a tabby dog")
    assert (swapped.edited.float() - swapped.reconstruction.float()).abs().mean() > 0.5


class AsReplayed:
    """Runs the UNet eagerly, but shows the controller the Python step of its first call: all that a
    CUDA-graph replay (Model.controlled_denoise on a GPU) lets Python see."""

    def __init__(self, model, controller):
        self.model, self.controller, self.captured_at = model, controller, None

    def __call__(self, latents, timestep, embeddings):
        step = self.controller.step
        self.captured_at = step if self.captured_at is None else self.captured_at
        self.controller.step = self.captured_at
        try:
            return self.model.denoise_eager(latents, timestep, embeddings)
        finally:
            self.controller.step = step


@pytest.mark.parametrize("target, options", [
    ("a close-up photo of a tabby dog", EditOptions(cross_replace_steps=0.5, self_replace_steps=0.3, blend_words=("cat", "dog"))),
    ("a close-up photo of a fluffy tabby cat", EditOptions(cross_replace_steps={"default_": 0.6, "fluffy": 0.3})),
    (SOURCE, EditOptions(reweights={"tabby": 2.0}, cross_replace_steps=0.5)),
])
def test_controllers_read_their_step_from_tensors_so_graph_replays_edit_alike(tiny_model, inversion, target, options):
    results = []
    for replayed in (False, True):
        controller, _ = build_controller(tiny_model, inversion.prompt, target, inversion.num_steps, options)
        blend = build_blend(tiny_model, inversion.prompt, target, inversion.num_steps, options)
        denoise = AsReplayed(tiny_model, controller) if replayed else tiny_model.denoise_eager
        results.append(edit_sample(
            tiny_model.unet, denoise, inversion.noise_latents, inversion.null_text_embeddings,
            tiny_model.embed([inversion.prompt, target]), tiny_model.schedule(inversion.num_steps),
            inversion.guidance_scale, controller, blend,
        ))
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=0)


@pytest.mark.parametrize("weight", [1.0, 0.25])
def test_self_attention_replacement_is_the_sources_probabilities_on_the_targets_values(tiny_model, generator, weight):
    attention = tiny_model.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.double()
    hidden = torch.randn(6, 64, attention.to_q.in_features, generator=generator, dtype=torch.float64)  # P = 3

    class Replacing(AttentionStore):
        def self_replacement(self, place, num_queries):
            return torch.tensor(weight, dtype=torch.float64)

    try:
        replaced = ControlledAttention(Replacing(resolution=8), "down")(attention, hidden)
        plain = ControlledAttention()(attention, hidden)
        heads = attention.heads
        q, k, v = ((hidden @ w.T).unflatten(-1, (heads, -1)).transpose(1, 2)
                   for w in (attention.to_q.weight, attention.to_k.weight, attention.to_v.weight))
        source_probabilities = torch.softmax(q[3] @ k[3].transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)  # row 3: source
        taken = (source_probabilities @ v[4:]).transpose(1, 2).flatten(2)  # (2, n, h*d), before to_out
        expected_targets = attention.to_out[0](taken)
    finally:
        attention.float()
    torch.testing.assert_close(replaced[:4], plain[:4], rtol=0, atol=0)  # unconditional rows and the source
    torch.testing.assert_close(replaced[4:], weight * expected_targets + (1 - weight) * plain[4:], rtol=1e-10, atol=1e-10)
