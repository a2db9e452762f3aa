import pytest
import torch

from p2p_real.artifacts import load_inversion, save_inversion
from p2p_real.defaults import INVERSION_METHODS
from p2p_real.editing.edit import edit, sample_plan
from p2p_real.editing.options import EditOptions
from p2p_real.editing.plan import build_plan
from p2p_real.images import load_image
from p2p_real.inversion.ddim import ddim_invert
from p2p_real.inversion.direct import direct_offsets
from p2p_real.inversion.methods import METHODS
from p2p_real.pipeline import invert
from p2p_real.random_models import tiny_random, tiny_sdxl_random

CAPTION = "a cup of coffee on a red saucer"
STEPS = 5


@pytest.fixture(scope="module")
def photo(tiny_model):
    return load_image("data/photos/coffee.jpg", tiny_model.resolution)


def test_direct_inversion_reproduces_the_photo_latent_and_round_trips(tiny_model, photo, tmp_path):
    [inversion] = invert(tiny_model, [photo], [CAPTION], method="direct", num_steps=STEPS)
    assert inversion.latent_offsets.shape == (STEPS, 4, 16, 16)
    assert inversion.latent_offsets.abs().max() > 1e-3  # plain CFG does drift; the offsets undo it
    # The reconstruction is sampled with the offsets, not assumed: it lands on the photo's latent
    # up to float32 rounding, where plain CFG from the same x_T drifts far away.
    [plain] = invert(tiny_model, [photo], [CAPTION], method="ddim", num_steps=STEPS)
    assert 0 < inversion.metrics["latent_mse"] < 1e-6 * plain.metrics["latent_mse"]
    save_inversion(inversion, tmp_path)
    loaded = load_inversion(tmp_path, tiny_model)
    assert torch.equal(loaded.latent_offsets, inversion.latent_offsets)
    result = edit(tiny_model, loaded, CAPTION + " and a spoon")  # runs with the offsets
    assert result.kind == "refine"


@pytest.mark.parametrize("build", [tiny_random, tiny_sdxl_random])
def test_direct_offsets_put_the_editing_source_branch_on_the_photo(build):
    # In float64: the random UNet is chaotic enough to amplify float32 rounding over the steps.
    model = build(seed=0).to(dtype=torch.float64)
    photo = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    latents = model.encode(photo).double()
    embeddings = model.embed([CAPTION, "a cup of tea on a red saucer"]).double()
    unconditional = model.empty_prompt(1).double()
    schedule = model.schedule(STEPS)
    trajectory = ddim_invert(model.denoise, latents, embeddings[:1], schedule)
    offsets = direct_offsets(model.denoise, trajectory, embeddings[:1], unconditional, schedule, 7.5)
    target = "a cup of tea on a red saucer"
    plan = build_plan(model, CAPTION, [target], [EditOptions()], STEPS)
    null = unconditional.expand(STEPS, -1, -1, -1)[:, 0]
    edited = sample_plan(model, plan, trajectory[-1, 0], null, embeddings, schedule, 7.5,
                         latent_offsets=offsets).latents
    assert (edited[0] - latents[0]).norm() / latents.norm() < 1e-9
    assert (edited[1] - latents[0]).norm() / latents.norm() > 1e-3  # the target branch is not pinned
    without = sample_plan(model, plan, trajectory[-1, 0], null, embeddings, schedule, 7.5).latents
    assert (without[0] - latents[0]).norm() / latents.norm() > 1e-2  # plain CFG alone drifts


def test_negative_prompt_inversion_uses_the_prompt_as_null_embedding(tiny_model, photo):
    [negative] = invert(tiny_model, [photo], [CAPTION], method="negative-prompt", num_steps=STEPS)
    prompt_embedding = tiny_model.embed([CAPTION])[0]
    assert torch.equal(negative.null_text_embeddings, prompt_embedding.expand(STEPS, -1, -1))
    # With null == prompt, guidance has no effect: the reconstruction equals guidance-1 sampling.
    [plain] = invert(tiny_model, [photo], [CAPTION], method="ddim", num_steps=STEPS, guidance_scale=1.0)
    assert abs(negative.metrics["latent_mse"] - plain.metrics["latent_mse"]) <= 1e-4 * plain.metrics["latent_mse"]
    [guided] = invert(tiny_model, [photo], [CAPTION], method="ddim", num_steps=STEPS)
    assert negative.metrics["latent_mse"] < guided.metrics["latent_mse"]


def test_the_method_table_and_the_clis_names_agree():
    assert tuple(METHODS) == INVERSION_METHODS  # the CLI lists names without importing torch


def test_null_text_diagnostics_say_where_the_optimisation_stopped_short(tiny_model, photo):
    from p2p_real.inversion.options import NullTextOptions

    options = NullTextOptions(num_inner_steps=3, early_stop_epsilon=1e-3)
    [inversion] = invert(tiny_model, [photo], [CAPTION], method="null-text", num_steps=STEPS, options=options)
    diagnostics = inversion.diagnostics
    assert set(diagnostics) == {"final_loss", "early_stop_threshold", "reached_threshold", "inner_steps"}
    assert all(len(values) == STEPS for values in diagnostics.values())
    assert diagnostics["early_stop_threshold"] == pytest.approx([1e-3 + i * 2e-5 for i in range(STEPS)])
    for loss, threshold, reached, steps in zip(*(diagnostics[name] for name in ("final_loss", "early_stop_threshold",
                                                                                "reached_threshold", "inner_steps"))):
        assert reached == (loss < threshold)
        assert 1 <= steps <= 3 and (reached or steps == 3)  # a step that never got below ran every Adam step
    [strict] = invert(tiny_model, [photo], [CAPTION], method="null-text", num_steps=STEPS,
                      options=NullTextOptions(num_inner_steps=2, early_stop_epsilon=0.0, early_stop_slope=0.0))
    assert not any(strict.diagnostics["reached_threshold"]) and set(strict.diagnostics["inner_steps"]) == {2}
