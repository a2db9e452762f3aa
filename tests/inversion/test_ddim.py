import pytest
import torch
from diffusers import DDIMInverseScheduler

from p2p_real.inversion.ddim import ddim_invert


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_v_model"])
def test_ddim_inversion_equals_diffusers_inverse_scheduler(fixture, request, generator):
    model = request.getfixturevalue(fixture)
    latents = model.encode(torch.rand(2, 3, model.resolution, model.resolution, generator=generator))
    conditional = model.embed(["a cat sitting on a mat", "a red car"])
    schedule = model.schedule(20)

    trajectory = ddim_invert(model.denoise, latents, conditional, schedule)

    inverse = DDIMInverseScheduler.from_config(model.scheduler_config)
    inverse.set_timesteps(20)
    expected = [latents]
    with torch.no_grad():
        for timestep in inverse.timesteps:
            output = model.unet(expected[-1], timestep, encoder_hidden_states=conditional).sample
            expected.append(inverse.step(output, timestep, expected[-1]).prev_sample)
    expected = torch.stack(expected)
    assert trajectory.shape == (21, 2, 4, 16, 16)
    assert torch.equal(trajectory[0], latents)
    relative_error = (trajectory - expected).norm() / expected.norm()
    assert relative_error < 1e-5, relative_error
    assert (trajectory[-1] - latents).abs().mean() > 0.1  # it did move: x_T is noise, not the photo


def test_ddim_inversion_is_deterministic(tiny_model, generator):
    latents = torch.randn(1, 4, 16, 16, generator=generator)
    conditional = tiny_model.embed(["a dog"])
    schedule = tiny_model.schedule(10)
    first = ddim_invert(tiny_model.denoise, latents, conditional, schedule)
    second = ddim_invert(tiny_model.denoise, latents, conditional, schedule)
    assert torch.equal(first, second)
