"""CUDA-graph replays of the UNet, behind the `denoise` seam: one capture per batch shape and
gradient mode, then each call is a single replay instead of ~1,000 kernel launches. At batch 1 the
UNet is bound by launches, not arithmetic, so this is where most of the speed-up comes from.

Only for fixed code paths: an attention controller runs Python per layer, which a replay would
skip, so editing always calls the UNet directly.
"""
from __future__ import annotations

import torch


class CudaGraphDenoiser:
    def __init__(self, unet, dtype: torch.dtype):
        self.unet = unet
        self.dtype = dtype
        self.replays: dict[tuple, object] = {}

    def eager(self, latents: torch.Tensor, timestep: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        output = self.unet(latents.to(self.dtype), timestep, encoder_hidden_states=embeddings).sample
        return output.float()

    def __call__(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        timestep_tensor = torch.full((), timestep, dtype=torch.long, device=latents.device)
        with_grad = torch.is_grad_enabled() and embeddings.requires_grad
        key = (tuple(latents.shape), tuple(embeddings.shape), latents.dtype, embeddings.dtype, with_grad)
        if key not in self.replays:
            self.replays[key] = self.capture(latents, timestep_tensor, embeddings, with_grad)
        return self.replays[key](latents, timestep_tensor, embeddings)

    def capture(self, latents, timestep, embeddings, with_grad: bool):
        samples = (latents.detach().clone(), timestep.clone(), embeddings.detach().clone())
        if with_grad:
            # Forward and backward graphs, with gradients flowing to the embeddings only.
            return torch.cuda.make_graphed_callables(self.eager, (samples[0], samples[1], samples[2].requires_grad_(True)))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(3):  # warm up kernels and the allocator outside the capture
                self.eager(*samples)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            output = self.eager(*samples)

        def replay(latents, timestep, embeddings):
            for buffer, value in zip(samples, (latents, timestep, embeddings)):
                buffer.copy_(value)
            graph.replay()
            return output.clone()  # the next replay overwrites `output`

        return replay
