import pytest
import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler

from p2p_real.random_models import SD_V1_SCHEDULER
from p2p_real.schedule import Schedule, ddim_inverse_step, ddim_step


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_steps_match_diffusers_schedulers(prediction_type, generator):
    config = {**SD_V1_SCHEDULER, "prediction_type": prediction_type}
    schedule = Schedule.from_scheduler_config(config, 50)
    forward, inverse = DDIMScheduler.from_config(config), DDIMInverseScheduler.from_config(config)
    forward.set_timesteps(50)
    inverse.set_timesteps(50)
    assert schedule.timesteps.tolist() == forward.timesteps.tolist() == inverse.timesteps.flip(0).tolist()
    assert schedule.timesteps[0] == 981 and schedule.timesteps[-1] == 1  # steps_offset=1 for SD v1
    for timestep in (981, 501, 21, 1):
        latents = torch.randn(2, 4, 8, 8, generator=generator)
        output = torch.randn(2, 4, 8, 8, generator=generator)
        expected = forward.step(output, timestep, latents).prev_sample
        torch.testing.assert_close(ddim_step(schedule, output, timestep, latents), expected, rtol=1e-5, atol=1e-5)
        expected = inverse.step(output, timestep, latents).prev_sample
        torch.testing.assert_close(ddim_inverse_step(schedule, output, timestep, latents), expected,
                                   rtol=1e-5, atol=1e-5)


def test_inverse_step_undoes_forward_step_for_a_fixed_epsilon(generator):
    schedule = Schedule.from_scheduler_config(SD_V1_SCHEDULER, 50)
    latents = torch.randn(1, 4, 8, 8, generator=generator, dtype=torch.float64)
    epsilon = torch.randn(1, 4, 8, 8, generator=generator, dtype=torch.float64)
    for timestep in (981, 481, 1):
        noisier = ddim_inverse_step(schedule, epsilon, timestep, latents)
        assert not torch.allclose(noisier, latents)
        torch.testing.assert_close(ddim_step(schedule, epsilon, timestep, noisier), latents)


def test_last_step_uses_the_final_alpha():
    schedule = Schedule.from_scheduler_config(SD_V1_SCHEDULER, 50)
    assert schedule.alpha_bar(1 - schedule.step_size) == pytest.approx(float(schedule.alphas_cumprod[0]))
    assert schedule.alpha_bar(981) == pytest.approx(float(schedule.alphas_cumprod[981]))


def test_rejects_unsupported_prediction_and_step_counts():
    with pytest.raises(ValueError, match="sample"):
        Schedule.from_scheduler_config({**SD_V1_SCHEDULER, "prediction_type": "sample"}, 50)
    with pytest.raises(ValueError, match="steps"):
        Schedule.from_scheduler_config(SD_V1_SCHEDULER, 0)


def test_sdxl_bases_euler_scheduler_config_gives_its_own_spacing():
    # stabilityai/stable-diffusion-xl-base-1.0's scheduler_config.json: an Euler scheduler's config,
    # read for its betas, prediction type and timestep spacing only.
    config = {"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
              "beta_start": 0.00085, "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
              "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False, "skip_prk_steps": True,
              "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None, "use_karras_sigmas": False}
    leading = Schedule.from_scheduler_config(config, 50)
    assert leading.timesteps[0] == 981 and leading.timesteps[-1] == 1 and leading.prediction_type == "epsilon"
    trailing = Schedule.from_scheduler_config({**config, "timestep_spacing": "trailing"}, 50)
    assert trailing.timesteps[0] == 999 and trailing.timesteps[-1] == 19
