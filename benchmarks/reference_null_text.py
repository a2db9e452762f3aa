"""Null-text inversion written plainly, as the paper's notebook (null_text_w_ptp.ipynb) runs it:
fp32, batch 1, diffusers' UNet called directly, the early-stop test read on the host every inner
step. The baseline that benchmarks/gpu_speed.py measures the project's version against; written
independently of p2p_real so that it also checks its result."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def alpha_bar(alphas_cumprod: torch.Tensor, final: float, timestep: int) -> float:
    return float(alphas_cumprod[timestep]) if timestep >= 0 else final


def prev_step(output, timestep: int, sample, alphas_cumprod, final: float, step: int):
    a_t, a_prev = alpha_bar(alphas_cumprod, final, timestep), alpha_bar(alphas_cumprod, final, timestep - step)
    x0 = (sample - (1 - a_t) ** 0.5 * output) / a_t**0.5
    return a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * output


def next_step(output, timestep: int, sample, alphas_cumprod, final: float, step: int):
    current = min(timestep - step, 999)
    a_t, a_next = alpha_bar(alphas_cumprod, final, current), alpha_bar(alphas_cumprod, final, timestep)
    x0 = (sample - (1 - a_t) ** 0.5 * output) / a_t**0.5
    return a_next**0.5 * x0 + (1 - a_next) ** 0.5 * output


def reference_null_text_inversion(predict, scheduler, latents, conditional, unconditional, guidance_scale=7.5,
                                  num_inner_steps=10, early_stop_epsilon=1e-5, max_timesteps=None):
    """`predict(latents, timestep, embeddings)`: the UNet's output (for SD v1, `unet(...).sample`);
    latents (1, 4, 64, 64), embeddings (1, 77, 768); `scheduler` a DDIMScheduler after set_timesteps.
    `max_timesteps`: optimise only the first that many timesteps (for timing: without early stop
    every timestep does the same work). Returns (final latent of guided sampling with the optimised
    embeddings, list of embeddings)."""
    timesteps = scheduler.timesteps.tolist()
    alphas_cumprod, final = scheduler.alphas_cumprod, float(scheduler.final_alpha_cumprod)
    step = scheduler.config.num_train_timesteps // len(timesteps)
    all_latents = [latents]
    with torch.no_grad():
        for index in range(len(timesteps)):
            timestep = timesteps[len(timesteps) - index - 1]
            output = predict(latents, timestep, conditional)
            latents = next_step(output, timestep, latents, alphas_cumprod, final, step)
            all_latents.append(latents)
    embeddings = []
    latent_cur = all_latents[-1]
    for index, timestep in enumerate(timesteps[:max_timesteps]):
        unconditional = unconditional.clone().detach().requires_grad_(True)
        optimizer = torch.optim.Adam([unconditional], lr=1e-2 * (1.0 - index / 100.0))
        latent_prev = all_latents[len(all_latents) - index - 2]
        with torch.no_grad():
            output_conditional = predict(latent_cur, timestep, conditional)
        for _ in range(num_inner_steps):
            output_unconditional = predict(latent_cur, timestep, unconditional)
            output = output_unconditional + guidance_scale * (output_conditional - output_unconditional)
            reconstructed = prev_step(output, timestep, latent_cur, alphas_cumprod, final, step)
            loss = F.mse_loss(reconstructed, latent_prev)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if loss.item() < early_stop_epsilon + index * 2e-5:
                break
        embeddings.append(unconditional[:1].detach())
        with torch.no_grad():
            context = torch.cat([unconditional, conditional])
            output = predict(torch.cat([latent_cur] * 2), timestep, context)
            output_unconditional, output_conditional = output.chunk(2)
            output = output_unconditional + guidance_scale * (output_conditional - output_unconditional)
            latent_cur = prev_step(output, timestep, latent_cur, alphas_cumprod, final, step)
    return latent_cur, embeddings
