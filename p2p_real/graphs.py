"""How the UNet runs behind the `denoise` seam: eagerly, or replayed from CUDA graphs, one capture
per batch shape and gradient mode, so that each call is a single replay instead of ~1,000 kernel
launches. At batch 1 the UNet is bound by launches, not arithmetic, so this is where most of the
speed-up comes from. The model owns one `UNetRunner`; inversion, sampling and editing never ask
whether they run under a graph.

A replay skips Python, so code that runs inside the UNet (a P2P controller in the attention
processors) must keep its per-step state in tensors it updates in place (see
p2p_real/editing/state.py). Such code must not run twice for one step, so no call is a throwaway
warm-up: the first call of a shape runs eagerly on the capture stream (it is that step's result and
the warm-up), the second is captured and replayed.

Not captured: whole null-text iterations (forward, backward and the Adam update in one graph). That
was built and measured on an H200 at 9.60 s against 9.66 s a photo with per-pass graphs at batch 1,
4.64 against 4.65 at batch 8 (docs/BENCHMARKS.md, issue 13): Python between graphed passes costs
under 1%, so it did not pay for its second graph pool and the branches it put into inversion/.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch

from .text_encoders import full_precision

Forward = Callable[[torch.Tensor, torch.Tensor | int, torch.Tensor], torch.Tensor]


class UNetRunner:
    """A model's UNet as `denoise(latents, timestep, embeddings) -> prediction`, and the one place that
    decides how its passes run: eagerly, from CUDA graphs (`use_cuda_graphs`), the passes with
    gradients through torch.compile's UNet (`compile`), or under other attention processors for a
    block (`processors`, Prompt-to-Prompt's), with a graph cache of the block's own.

    The UNet is the model's denoiser: SD3's transformer runs here alike. `denoiser_inputs(embeddings,
    image_size, timestep, dtype)` is the family's keyword arguments (its adapter's); the prediction
    comes back in float32 for a half-precision UNet (float64 stays float64), so that the schedule's
    arithmetic and losses stay in full precision."""

    def __init__(self, unet: torch.nn.Module, denoiser_inputs: Callable[..., dict], vae_scale: int):
        self.unet, self.denoiser_inputs, self.vae_scale = unet, denoiser_inputs, vae_scale
        self.graphs: CudaGraphDenoiser | None = None
        self.compiled = False
        self.in_block = False  # inside `processors(...)`: the plain denoise would run the block's processors

    @property
    def graphed(self) -> bool:
        return self.graphs is not None

    def forward(self, latents: torch.Tensor, timestep, embeddings: torch.Tensor, unet=None) -> torch.Tensor:
        """One pass through the UNet's modules (or `unet`, e.g. compiled): the path processors see."""
        image_size = (latents.shape[-2] * self.vae_scale, latents.shape[-1] * self.vae_scale)
        inputs = self.denoiser_inputs(embeddings, image_size, timestep, self.unet.dtype)
        output = (self.unet if unet is None else unet)(latents.to(self.unet.dtype), **inputs).sample
        return output.to(full_precision(latents).dtype)

    def __call__(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        if self.in_block:
            # A graph captured outside the block would replay the plain UNet: never let that happen silently.
            raise RuntimeError("the model's denoise was called inside a block of other attention processors "
                               "(an edit's); use the denoise it yields")
        return (self.forward if self.graphs is None else self.graphs)(latents, timestep, embeddings)

    def use_cuda_graphs(self, compile: bool = False) -> None:
        """Replay the UNet from CUDA graphs. With `compile`, the passes with gradients (null-text's Adam
        iterations: 88% of its FLOPs) run the UNet compiled by torch.compile: fused kernels, about 1.3x
        faster null-text after minutes of compiling on the first run (kept in torch's cache folder).
        Edits change the attention processors, which would recompile it every edit: they run uncompiled."""
        gradient_forward = None
        if compile:
            compiled = torch.compile(self.unet)

            def gradient_forward(latents, timestep, embeddings):
                return self.forward(latents, timestep, embeddings, compiled)

        self.graphs = CudaGraphDenoiser(self.forward, gradient_forward)
        self.compiled = compile

    def clear(self) -> None:
        """Drop every capture (each keeps a private memory pool), e.g. after running out of memory."""
        if self.graphs is not None:
            self.graphs.clear()

    @contextmanager
    def processors(self, processors: dict) -> Iterator[Forward]:
        """`with runner.processors({layer: processor}) as denoise:` the UNet under other attention
        processors for the block, through the `denoise` it yields (replayed from graphs captured inside
        the block when graphs are on: a capture bakes in the processors, so it never outlives the
        block). The previous processors come back, even on error."""
        if self.in_block:
            raise RuntimeError("blocks of other attention processors cannot nest")
        previous = dict(self.unet.attn_processors)  # set_attn_processor consumes the dict it is given
        self.unet.set_attn_processor(processors)
        self.in_block = True
        try:
            yield self.forward if self.graphs is None else CudaGraphDenoiser(self.forward)
        finally:
            self.unet.set_attn_processor(previous)
            self.in_block = False


class CudaGraphDenoiser:
    """`forward(latents, timestep, embeddings)`, replayed from graphs. Passes with gradients to the
    embeddings run `gradient_forward` instead when given (the UNet compiled by torch.compile: null-text's
    backward passes hold 88% of its FLOPs, so compiling only them takes one compilation instead of three
    for most of the gain). The output has the forward's dtype: float64 stays float64."""

    def __init__(self, forward: Forward, gradient_forward: Forward | None = None):
        self.forward, self.gradient_forward = forward, gradient_forward or forward
        self.stream = torch.cuda.Stream()  # warm-ups and captures share it: libraries cache handles per stream
        self.warmed: set[tuple] = set()
        self.replays: dict[tuple, Callable] = {}

    def clear(self) -> None:
        """Forget every capture and warm-up, so that their memory pools can be freed (after running out
        of memory); a shape met again is warmed up and captured anew."""
        self.warmed.clear()
        self.replays.clear()

    def eager(self, latents: torch.Tensor, timestep: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        with_grad = torch.is_grad_enabled() and embeddings.requires_grad
        return (self.gradient_forward if with_grad else self.forward)(latents, timestep, embeddings)

    def __call__(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        timestep_tensor = torch.tensor(timestep, device=latents.device)  # int64 for DDIM's, float32 for a flow's
        with_grad = torch.is_grad_enabled() and embeddings.requires_grad
        key = (tuple(latents.shape), tuple(embeddings.shape), latents.dtype, embeddings.dtype, with_grad)
        if key not in self.replays:
            if with_grad:
                # Forward and backward graphs, gradients flowing to the embeddings only.
                self.warm_up_with_gradients(latents, timestep_tensor, embeddings)
                sample = (latents.detach().clone(), timestep_tensor, embeddings.detach().clone().requires_grad_(True))
                self.replays[key] = torch.cuda.make_graphed_callables(self.eager, sample, num_warmup_iters=0)
            elif key not in self.warmed:
                self.warmed.add(key)
                return self.on_capture_stream(latents, timestep_tensor, embeddings)
            else:
                self.replays[key] = self.capture(latents, timestep_tensor, embeddings)
        return self.replays[key](latents, timestep_tensor, embeddings)

    def warm_up_with_gradients(self, latents, timestep, embeddings, iterations: int = 3) -> None:
        """torch's own warm-up in make_graphed_callables keeps its last outputs alive into the capture,
        so the sample input's AccumulateGrad node, made on the warm-up stream, meets gradients from
        the capture stream, and torch warns of a stream mismatch on every run (torch 2.11). Warming up
        here on throwaway leaves, freed before the capture, does the same lazy initialisation."""
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            for _ in range(iterations):
                leaf = embeddings.detach().clone().requires_grad_(True)
                output = self.eager(latents.detach(), timestep, leaf)
                torch.autograd.grad(output, leaf, torch.ones_like(output))
                del leaf, output
        torch.cuda.current_stream().wait_stream(self.stream)

    def on_capture_stream(self, latents, timestep, embeddings) -> torch.Tensor:
        current = torch.cuda.current_stream()
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream), torch.no_grad():
            output = self.eager(latents, timestep, embeddings)
        current.wait_stream(self.stream)
        output.record_stream(current)  # allocated on the capture stream, used on this one
        return output

    def capture(self, latents, timestep, embeddings):
        inputs = (latents.detach().clone(), timestep.clone(), embeddings.detach().clone())
        graph = torch.cuda.CUDAGraph()
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.graph(graph, stream=self.stream):
            output = self.eager(*inputs)

        def replay(latents, timestep, embeddings):
            for buffer, value in zip(inputs, (latents, timestep, embeddings)):
                buffer.copy_(value)
            graph.replay()
            return output.clone()  # the next replay overwrites `output`

        return replay
