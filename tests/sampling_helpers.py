"""Helpers shared by the tests of both model families (pytest puts tests/ on the path: pyproject.toml)."""
import torch

from p2p_real.editing.control import edit_plan
from p2p_real.editing.edit import sample_plan
from p2p_real.editing.options import EditOptions
from p2p_real.sampling import guided_prediction
from p2p_real.schedule import ddim_step


def run_plan(model, inversion, targets, options, regions=None):
    """Sample the edit of `inversion` into `targets` (one EditOptions for all, or one each), offsets
    included; `regions`: a painted region (h, w) or None per target."""
    targets = [targets] if isinstance(targets, str) else targets
    options = [options] * len(targets) if isinstance(options, EditOptions) else options
    plan = edit_plan(model, inversion.prompt, targets, options, inversion.num_steps, regions)
    offsets = None if inversion.latent_offsets is None else inversion.latent_offsets[:, None]
    return sample_plan(model, plan, inversion.noise_latents, inversion.null_text_embeddings,
                       model.embed([inversion.prompt, *targets]), model.schedule(inversion.num_steps),
                       inversion.guidance_scale, offsets)


def guided_path(model, noise_latents, conditional, unconditional_per_step, schedule, guidance_scale):
    """Latents after each guided DDIM step, written out here independently of ddim_sample."""
    latents, path = noise_latents, []
    with torch.no_grad():
        for index, timestep in enumerate(schedule.timesteps.tolist()):
            prediction = guided_prediction(model.denoise, latents, timestep, unconditional_per_step[index], conditional,
                                           guidance_scale)
            latents = ddim_step(schedule, prediction, timestep, latents)
            path.append(latents)
    return torch.stack(path)  # (steps, B, C, h, w); entry i should equal trajectory[-i - 2]
