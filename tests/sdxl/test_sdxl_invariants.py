"""SDXL runs through the same inversion and editing loops as SD v1: the same invariants, on
tiny-sdxl-random (two text encoders, a (B, 78, D) embedding whose last row is the pooled vector,
size conditioning, attention at the two coarser of three levels).

Every inversion is computed once per module, at 5 DDIM steps: the file takes about 20 s on 2 CPU cores.
"""
import pytest
import torch
from sampling_helpers import guided_path, run_plan

from p2p_real.artifacts import load_inversion, save_inversion
from p2p_real.defaults import INVERSION_METHODS
from p2p_real.editing.controlled import controlled
from p2p_real.editing.edit import edit
from p2p_real.editing.options import EditOptions
from p2p_real.editing.plan import attention_resolutions, build_plan
from p2p_real.images import load_image, to_tensor, to_uint8
from p2p_real.inversion.ddim import ddim_invert
from p2p_real.inversion.options import NullTextOptions
from p2p_real.pipeline import invert
from p2p_real.sampling import ddim_sample

SOURCE = "a close-up photo of a tabby cat"  # data/photos/captions.json's caption of chelsea.jpg
DOG = "a close-up photo of a tabby dog"
FLUFFY = "a close-up photo of a fluffy tabby cat"
STEPS = 5
# As tests/inversion/test_null_text.py: the tiny model's narrow text path (32 + 32 wide) steers its
# UNet less than SDXL's 2048-wide one, so within 10 Adam steps null-text needs a larger rate.
TINY_OPTIONS = NullTextOptions(learning_rate=0.1)
# Random attention at 4x4 is nearly flat: after the 3x3 max-pool the blend words' maps lie within
# 1.5% of their maximum everywhere (observed), so SD v1's 0.95 would select everything.
BLEND_THRESHOLD = 0.998
TOKENS, WIDTH, POOLED = 77, 64, 32  # tiny-sdxl-random: 77 token rows of 32 + 32, a 32-wide pooled row


@pytest.fixture(scope="module")
def photo(tiny_sdxl_model):
    return load_image("data/photos/chelsea.jpg", tiny_sdxl_model.resolution)


@pytest.fixture(scope="module")
def inversions(tiny_sdxl_model, photo):
    """method -> the photo's Inversion, each through `invert()`, computed once for the module."""
    results = {}
    for method in INVERSION_METHODS:
        options = TINY_OPTIONS if method == "null-text" else NullTextOptions()
        [results[method]] = invert(tiny_sdxl_model, [photo], [SOURCE], method=method, num_steps=STEPS, options=options)
    return results


@pytest.fixture(scope="module")
def inversion(inversions):
    """The edits' inversion, as in tests/editing/test_edit.py: plain DDIM."""
    return inversions["ddim"]




def plain_generation(model, inversion, prompt):
    """Guided sampling of `prompt` from the inversion's x_T with its null embeddings, no edit at all."""
    return ddim_sample(model.denoise, inversion.noise_latents[None], model.schedule(STEPS), model.embed([prompt]),
                       inversion.null_text_embeddings[:, None], inversion.guidance_scale)[0]


def relative(a, b):
    return float((a - b).norm() / b.norm())


def unet_outputs(model, run):
    """The UNet's outputs, one per sampling step (one batched guided call each), while `run()` runs."""
    outputs = []
    handle = model.unet.register_forward_hook(
        lambda module, args, output: outputs.append(output.sample.detach().clone()))
    try:
        run()
    finally:
        handle.remove()
    return outputs


# ---------------------------------------------------------------- inversion: all four methods


def test_every_method_gives_sdxl_shaped_artifacts_that_save_load_and_edit(tiny_sdxl_model, inversions, tmp_path):
    model = tiny_sdxl_model
    empty, prompt = model.empty_prompt(1)[0], model.embed([SOURCE])[0]
    assert empty.shape == prompt.shape == (TOKENS + 1, WIDTH)
    assert not empty.any(), "SDXL base's null prompt is all zeros (force_zeros_for_empty_prompt)"
    for method in INVERSION_METHODS:
        inversion = inversions[method]
        assert inversion.method == method and inversion.model_name == "tiny-sdxl-random"
        assert inversion.null_text_embeddings.shape == (STEPS, TOKENS + 1, WIDTH), method
        assert inversion.noise_latents.shape == (4, 16, 16)
        assert (inversion.latent_offsets is not None) == (method == "direct")
        assert all(torch.isfinite(torch.tensor(value))
                   for value in inversion.metrics.values()), (method, inversion.metrics)
        folder = save_inversion(inversion, tmp_path / method)
        loaded = load_inversion(folder, model)
        for name, tensor in inversion.tensors().items():
            assert torch.equal(getattr(loaded, name), tensor), (method, name)
        result = edit(model, loaded, DOG)
        assert result.kind == "replace"
        # The edit's source branch is the inversion's own reconstruction (same loop, other batch):
        # to a level of rounding, except Direct Inversion's. There float32 rounding of the other
        # batch, amplified by the random UNet through guidance, moves the latents by ~3e-3 and this
        # random VAE turns 1e-4 into 6 levels; exactness is checked in float64 below.
        difference = (result.reconstruction.float() - inversion.reconstruction.float()).abs()
        # direct: 2.2 seen
        assert difference.mean() < (3.0 if method == "direct" else 0.01), (method, difference.mean())
        assert method == "direct" or difference.max() <= 2, method
        # ... and the swapped word does change the target.
        assert (result.edited.float() - result.reconstruction.float()).abs().mean() > 1.0, method
    # What each method prescribes as the unconditional embedding, row by row.
    assert torch.equal(inversions["ddim"].null_text_embeddings, empty.expand(STEPS, -1, -1))
    assert torch.equal(inversions["direct"].null_text_embeddings, empty.expand(STEPS, -1, -1))
    assert torch.equal(inversions["negative-prompt"].null_text_embeddings, prompt.expand(STEPS, -1, -1))


def test_null_text_optimises_the_pooled_row_but_never_its_padding(inversions):
    embeddings = inversions["null-text"].null_text_embeddings  # started from SDXL's all-zero null prompt
    tokens, pooled, padding = embeddings[:, :TOKENS], embeddings[:, TOKENS, :POOLED], embeddings[:, TOKENS, POOLED:]
    assert tokens.abs().amax() > 1e-2 and (pooled.abs().amax(-1) > 1e-2).all()  # both parts the UNet reads moved
    # The UNet reads only the first `pooled_width` columns of the pooled row: the rest gets no
    # gradient, and Adam leaves a parameter with zero gradient exactly where it was.
    assert torch.equal(padding, torch.zeros_like(padding))




def test_null_text_follows_the_pivot_trajectory_far_better_than_plain_cfg(tiny_sdxl_model, photo, inversions):
    model, inversion = tiny_sdxl_model, inversions["null-text"]
    latents = model.encode(to_tensor([photo]))
    conditional, schedule = model.embed([SOURCE]), model.schedule(STEPS)
    trajectory = ddim_invert(model.denoise, latents, conditional, schedule)
    assert torch.equal(trajectory[-1, 0], inversion.noise_latents)  # the artifact's x_T is this trajectory's
    pivots = trajectory[:-1].flip(0)  # pivots[i] = trajectory[-i - 2]
    plain = guided_path(model, trajectory[-1], conditional, model.empty_prompt(1).expand(STEPS, -1, -1, -1), schedule,
                        7.5)
    optimised = guided_path(model, trajectory[-1], conditional, inversion.null_text_embeddings[:, None], schedule, 7.5)
    plain_error = (plain - pivots).pow(2).mean()
    optimised_error = (optimised - pivots).pow(2).mean()
    assert plain_error / optimised_error > 3, (plain_error, optimised_error)  # observed 5.4 (2.83 / 0.53)
    # The artifact's latent_mse is that of sampling with its embeddings (float32 rounding only) ...
    final_mse = float((optimised[-1] - latents).pow(2).mean())
    assert inversion.metrics["latent_mse"] == pytest.approx(final_mse, rel=1e-4)
    # ... and far below what the plain empty prompt gives (observed 0.85 against 4.56).
    assert inversion.metrics["latent_mse"] < 0.5 * inversions["ddim"].metrics["latent_mse"]
    assert float((plain[-1] - latents).pow(2).mean()) == pytest.approx(inversions["ddim"].metrics["latent_mse"],
                                                                       rel=1e-4)


def test_direct_inversion_lands_on_the_photo_latent(tiny_sdxl_model, photo, inversions):
    direct, plain = inversions["direct"], inversions["ddim"]
    assert direct.latent_offsets.shape == (STEPS, 4, 16, 16)
    assert direct.latent_offsets.abs().max() > 1e-3  # plain CFG does drift; the offsets undo it
    assert torch.equal(direct.noise_latents, plain.noise_latents)  # the same DDIM-inversion x_T
    # Sampled with the offsets, not assumed: the photo latent up to float32 rounding (observed
    # 1e-8), where plain CFG from the same x_T drifts far away (observed 4.6).
    assert 0 < direct.metrics["latent_mse"] < 1e-6 * plain.metrics["latent_mse"]
    # So its picture is the VAE's own round trip of the photo (observed: 0.25 levels on average,
    # at most 6: this random VAE turns latent noise of 1e-4 into 6 levels), unlike plain CFG's.
    round_trip = to_uint8(tiny_sdxl_model.decode(tiny_sdxl_model.encode(to_tensor([photo]))))[0]
    direct_error = (direct.reconstruction.float() - round_trip.float()).abs().mean()
    plain_error = (plain.reconstruction.float() - round_trip.float()).abs().mean()
    assert direct_error < 1.0 and plain_error > 20 * direct_error, (direct_error, plain_error)


# ---------------------------------------------------------------- editing: every kind


def test_target_equal_to_source_reproduces_the_reconstruction(tiny_sdxl_model, inversion):
    result = edit(tiny_sdxl_model, inversion, SOURCE, EditOptions(kind="replace"))
    assert torch.equal(result.edited, result.reconstruction)
    assert (result.reconstruction.int() - inversion.reconstruction.int()).abs().max() <= 2


@pytest.mark.parametrize("target, options, kind", [
    (DOG, EditOptions(), "replace"),
    (FLUFFY, EditOptions(), "refine"),
    (SOURCE, EditOptions(reweights={"tabby": 2.0}), "reweight"),
])
def test_each_edit_kind_changes_the_target_and_differs_from_plain_generation(tiny_sdxl_model, inversion, target,
                                                                             options, kind):
    model = tiny_sdxl_model
    result = edit(model, inversion, target, options)
    assert result.kind == kind
    assert result.cross_maps.shape == (2, 1, 4, 4, TOKENS)
    assert (result.reconstruction.int() - inversion.reconstruction.int()).abs().max() <= 2
    sampled = run_plan(model, inversion, target, options).latents
    source = plain_generation(model, inversion, SOURCE)
    assert relative(sampled[0], source) < 1e-4  # the source row is the reconstruction's sampling
    # The target moved off the source ...
    assert relative(sampled[1], sampled[0]) > 1e-2
    # ... and the attention edit did something: it is not what the target prompt gives alone.
    # (A re-weight keeps the prompt, so for it "plain" is the source itself, checked just above.)
    assert relative(sampled[1], plain_generation(model, inversion, target)) > 1e-3


def test_without_replacement_windows_an_edit_is_plain_generation(tiny_sdxl_model, inversion):
    for target in (DOG, FLUFFY):
        latents = run_plan(tiny_sdxl_model, inversion, target,
                           EditOptions(cross_replace_steps=0.0, self_replace_steps=0.0)).latents
        assert relative(latents[1], plain_generation(tiny_sdxl_model, inversion, target)) < 1e-4, target


def test_per_word_cross_replace_windows(tiny_sdxl_model, inversion):
    model = tiny_sdxl_model
    windows = {"default_": 0.4, "dog": (0.5, 1.0)}
    plan = build_plan(model, SOURCE, [DOG], [EditOptions(cross_replace_steps=windows)], STEPS)
    [dog] = [position for position, token in enumerate(model.token_ids([DOG])[0].tolist())
             if model.tokenizer.decode([token]).strip() == "dog"]
    alphas = plan.cross_alphas[:, 0]  # (T + 1, keys); rows [int(s0 (T + 1)), int(s1 (T + 1)))
    assert alphas[:, dog].tolist() == [0, 0, 0, 1, 1, 1]
    assert alphas[:, 0].tolist() == [1, 1, 0, 0, 0, 0] and torch.equal(alphas[:, dog + 1], alphas[:, 0])
    # A word's window equal to the default changes nothing; another window does.
    default = run_plan(model, inversion, DOG, EditOptions(cross_replace_steps=0.4)).latents
    same = run_plan(model, inversion, DOG, EditOptions(cross_replace_steps={"default_": 0.4, "dog": 0.4})).latents
    torch.testing.assert_close(same, default, rtol=0, atol=0)
    other = run_plan(model, inversion, DOG, EditOptions(cross_replace_steps=windows)).latents
    assert relative(other[1], default[1]) > 1e-4  # observed 7e-4: random attention is nearly flat
    # The word's window is applied at its steps only: with nothing else replaced, a window on "dog"
    # from step 3 of 5 leaves the first three UNet calls exactly as plain generation's.
    late = EditOptions(cross_replace_steps={"default_": 0.0, "dog": (0.6, 1.0)}, self_replace_steps=0.0)
    none = EditOptions(cross_replace_steps=0.0, self_replace_steps=0.0)
    edited = unet_outputs(model, lambda: run_plan(model, inversion, DOG, late))
    unedited = unet_outputs(model, lambda: run_plan(model, inversion, DOG, none))
    assert len(edited) == len(unedited) == STEPS
    for step in range(3):
        assert torch.equal(edited[step], unedited[step]), step
    for step in (3, 4):  # observed 2.8e-5 and 3.7e-5: one token's map of nearly flat random attention
        assert relative(edited[step], unedited[step]) > 5e-6, step


def test_self_replace_windows(tiny_sdxl_model, inversion):
    model = tiny_sdxl_model
    assert attention_resolutions(model.unet.config) == (4, 64)  # self-attention replaced at 8x8 and 4x4
    plan = build_plan(model, SOURCE, [DOG], [EditOptions(self_replace_steps=(0.2, 0.6))], STEPS)
    assert plan.self_weights[:, 0].tolist() == [0, 1, 1, 0, 0]  # steps [int(0.2 T), int(0.6 T))
    windowed = EditOptions(cross_replace_steps=0.0, self_replace_steps=(0.2, 0.6))
    none = EditOptions(cross_replace_steps=0.0, self_replace_steps=0.0)
    edited = unet_outputs(model, lambda: run_plan(model, inversion, DOG, windowed))
    unedited = unet_outputs(model, lambda: run_plan(model, inversion, DOG, none))
    assert torch.equal(edited[0], unedited[0])  # before the window: untouched
    for step in range(1, STEPS):  # in it, and after it through the latents it changed
        assert relative(edited[step], unedited[step]) > 1e-5, step
    # Only the target rows' conditional half is edited: the unconditional rows and the source row
    # of the first edited call are exactly as without the edit (rows: [uncond x 2, source, target]).
    torch.testing.assert_close(edited[1][:3], unedited[1][:3], rtol=0, atol=0)
    assert relative(edited[1][3], unedited[1][3]) > 1e-5


def test_local_blend_keeps_the_source_outside_the_mask(tiny_sdxl_model, inversion):
    options = EditOptions(blend_words=("cat", "dog"), blend_threshold=BLEND_THRESHOLD)
    sampled = run_plan(tiny_sdxl_model, inversion, DOG, options)
    latents, mask = sampled.latents, sampled.masks[0]  # (1, h, w)
    assert mask.shape == (1, 16, 16)
    assert 0 < mask.mean() < 1, "the test needs a mask with both inside and outside"
    outside = (mask == 0).expand_as(latents[1])
    assert torch.equal(latents[1][outside], latents[0][outside])
    assert (latents[1][~outside] - latents[0][~outside]).abs().max() > 1e-3
    unblended = run_plan(tiny_sdxl_model, inversion, DOG, EditOptions()).latents
    assert (unblended[1][outside] - latents[0][outside]).abs().max() > 1e-3  # without the blend they differ there
    assert sampled.cross_maps.shape[2:4] == (4, 4)  # SDXL's coarsest attention level of the tiny model


def test_many_targets_in_one_pass_equal_each_edit_alone(tiny_sdxl_model, inversion):
    targets = [DOG, FLUFFY, SOURCE, DOG]
    options = [EditOptions(blend_words=("cat", "dog"), blend_threshold=BLEND_THRESHOLD),
               EditOptions(cross_replace_steps=0.6),
               EditOptions(reweights={"tabby": 2.0}, self_replace_steps=(0.2, 0.5)),
               EditOptions(cross_replace_steps={"default_": 0.2, "dog": (0.4, 1.0)})]
    together = edit(tiny_sdxl_model, inversion, targets, options)
    assert [result.kind for result in together] == ["replace", "refine", "reweight", "replace"]
    assert together[0].mask is not None and all(result.mask is None for result in together[1:])
    for target, option, batched in zip(targets, options, together):
        alone = edit(tiny_sdxl_model, inversion, target, option)
        # Another batch is another matmul blocking: float32 rounding only.
        assert (alone.edited.int() - batched.edited.int()).abs().max() <= 2
        assert (alone.edited.float() - batched.edited.float()).abs().mean() < 0.05
        assert (alone.reconstruction.int() - batched.reconstruction.int()).abs().max() <= 2
        torch.testing.assert_close(alone.cross_maps, batched.cross_maps, rtol=1e-4, atol=1e-5)
        if alone.mask is not None:
            assert 0 < alone.mask.mean() < 1 and torch.equal(alone.mask, batched.mask)
    assert not torch.equal(together[0].edited, together[3].edited)  # the same prompt, other options


# ---------------------------------------------------------------- the kept cross-attention maps


def test_maps_come_from_the_coarsest_level_into_one_bounded_buffer(tiny_sdxl_model, inversion):
    model = tiny_sdxl_model
    resolution, _ = attention_resolutions(model.unet.config)
    assert resolution == 4  # 16x16 latents, cross-attention at levels 1 and 2 of 3: 16 / 2**2
    plan = build_plan(model, SOURCE, [DOG, FLUFFY], [EditOptions()] * 2, STEPS)
    schedule, prompts = model.schedule(STEPS), 3
    buffers = []
    with controlled(model, plan) as denoise:
        state = denoise.state

        def after_step(index, latents):
            buffers.append((state.map_sum.data_ptr(), tuple(state.map_sum.shape)))
            return latents

        ddim_sample(denoise, inversion.noise_latents[None].expand(prompts, -1, -1, -1), schedule,
                    model.embed([SOURCE, DOG, FLUFFY]),
                    inversion.null_text_embeddings[:, None].expand(-1, prompts, -1, -1), inversion.guidance_scale,
                    before_step=state.begin_step, after_step=after_step)
    # One buffer, summed into in place at every step, whatever the number of steps or layers.
    assert buffers == [buffers[0]] * STEPS and buffers[0][1] == (prompts, resolution, resolution, TOKENS)
    # From the cross-attention layers at 4x4 outside the middle block: the coarsest down and up levels.
    coarsest = {name for name in model.unet.attn_processors
                if "attn2" in name and name.startswith(("down_blocks.2.", "up_blocks.0."))}
    assert len(coarsest) == 6 and state.map_layers == coarsest  # depth 2: 1 x 2 down, 2 x 2 up
    # Probabilities averaged over heads and layers and summed over steps: the source row, which no
    # edit touches, sums to the number of steps at every position.
    totals = state.cross_maps[0].sum(-1)
    torch.testing.assert_close(totals, torch.full_like(totals, float(STEPS)), rtol=1e-5, atol=1e-5)
    result = edit(model, inversion, DOG)
    assert result.cross_maps.shape == (2, 1, resolution, resolution, TOKENS)
    torch.testing.assert_close(result.cross_maps, state.cross_maps[:2], rtol=1e-4, atol=1e-5)
