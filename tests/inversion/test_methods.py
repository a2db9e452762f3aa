import pytest
import torch

from p2p_real.artifacts import load_inversion, save_inversion
from p2p_real.editing.edit import build_controller, edit
from p2p_real.editing.sampler import edit_sample
from p2p_real.editing.options import EditOptions
from p2p_real.images import load_image
from p2p_real.inversion.ddim import ddim_invert
from p2p_real.inversion.direct import direct_offsets
from p2p_real.inversion.invert import invert
from p2p_real.models import tiny_random

CAPTION = "a cup of coffee on a red saucer"
STEPS = 5


@pytest.fixture(scope="module")
def photo(tiny_model):
    return load_image("data/photos/coffee.jpg", tiny_model.resolution)


def test_direct_inversion_reproduces_the_photo_latent_and_round_trips(tiny_model, photo, tmp_path):
    [inversion] = invert(tiny_model, [photo], [CAPTION], method="direct", num_steps=STEPS)
    assert inversion.latent_offsets.shape == (STEPS, 4, 16, 16)
    assert inversion.latent_offsets.abs().max() > 1e-3  # plain CFG does drift; the offsets undo it
    assert inversion.metrics["latent_mse"] == 0.0  # reconstruction is the photo's own latent
    save_inversion(inversion, tmp_path)
    loaded = load_inversion(tmp_path, tiny_model)
    assert torch.equal(loaded.latent_offsets, inversion.latent_offsets)
    result = edit(tiny_model, loaded, CAPTION + " and a spoon")  # runs with the offsets
    assert result.kind == "refine"


def test_direct_offsets_put_the_editing_source_branch_on_the_photo():
    # In float64: the random UNet is chaotic enough to amplify float32 rounding over the steps.
    model = tiny_random(seed=0).to(dtype=torch.float64)
    photo = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    latents = model.encode(photo).double()
    embeddings = model.embed([CAPTION, "a cup of tea on a red saucer"]).double()
    unconditional = model.embed([""]).double()
    schedule = model.schedule(STEPS)
    trajectory = ddim_invert(model.denoise, latents, embeddings[:1], schedule)
    offsets = direct_offsets(model.denoise, trajectory, embeddings[:1], unconditional, schedule, 7.5)
    controller, _ = build_controller(model, CAPTION, "a cup of tea on a red saucer", STEPS, EditOptions())
    null = unconditional.expand(STEPS, -1, -1, -1)[:, 0]
    edited = edit_sample(model.unet, model.denoise, trajectory[-1, 0], null, embeddings, schedule, 7.5, controller,
                         latent_offsets=offsets[:, 0])
    assert (edited[0] - latents[0]).norm() / latents.norm() < 1e-9
    assert (edited[1] - latents[0]).norm() / latents.norm() > 1e-3  # the target branch is not pinned
    without = edit_sample(model.unet, model.denoise, trajectory[-1, 0], null, embeddings, schedule, 7.5,
                          build_controller(model, CAPTION, "a cup of tea on a red saucer", STEPS, EditOptions())[0])
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
