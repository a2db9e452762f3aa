"""CUDA-graph replays of the UNet, behind the `denoise` seam: one capture per batch shape and
gradient mode, then each call is a single replay instead of ~1,000 kernel launches. At batch 1 the
UNet is bound by launches, not arithmetic, so this is where most of the speed-up comes from.

A replay skips Python, so code that runs inside the UNet (a P2P controller in the attention
processors) must keep its per-step state in tensors it updates in place (see
p2p_real/editing/state.py). Such code must not run twice for one step, so no call is a
throwaway warm-up: the first call of a shape runs eagerly on the capture stream (it is that step's
result and the warm-up), the second is captured and replayed.
"""
from __future__ import annotations

import torch


class CudaGraphDenoiser:
    """`forward(latents, timestep, embeddings)` (a `Model.denoise_eager`), replayed from graphs.
    Passes with gradients to the embeddings run `gradient_forward` instead when given (the UNet
    compiled by torch.compile: null-text's backward passes hold 88% of its FLOPs, so compiling
    only them takes one compilation instead of three for most of the gain)."""

    def __init__(self, forward, gradient_forward=None):
        self.forward, self.gradient_forward = forward, gradient_forward or forward
        self.stream = torch.cuda.Stream()  # warm-ups and captures share it: libraries cache handles per stream
        self.warmed: set[tuple] = set()
        self.replays: dict[tuple, object] = {}

    def clear(self) -> None:
        """Forget every capture and warm-up, so that their memory pools can be freed (after running out
        of memory); a shape met again is warmed up and captured anew."""
        self.warmed.clear()
        self.replays.clear()

    def eager(self, latents: torch.Tensor, timestep: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        with_grad = torch.is_grad_enabled() and embeddings.requires_grad
        return (self.gradient_forward if with_grad else self.forward)(latents, timestep, embeddings).float()

    def __call__(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        timestep_tensor = torch.full((), timestep, dtype=torch.long, device=latents.device)
        with_grad = torch.is_grad_enabled() and embeddings.requires_grad
        key = (tuple(latents.shape), tuple(embeddings.shape), latents.dtype, embeddings.dtype, with_grad)
        if key not in self.replays:
            if with_grad:
                # Forward and backward graphs, gradients flowing to the embeddings only.
                self.warm_up_with_gradients(latents, timestep_tensor, embeddings)
                self.replays[key] = torch.cuda.make_graphed_callables(
                    self.eager, (latents.detach().clone(), timestep_tensor, embeddings.detach().clone().requires_grad_(True)),
                    num_warmup_iters=0)
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


class StepGraph:
    """`step()`, work that reads and writes only tensors that outlive it, in place (a null-text
    iteration: forward, backward, Adam update, early-stop mask), replayed from one CUDA graph, so
    that nothing returns to Python between iterations.

    The first `warm_ups` calls are real steps run eagerly on the capture stream, which also does
    the lazy set-up a capture must not meet (cuBLAS workspaces, autograd's streams, Adam's state),
    so the step must call eager code (`Model.denoise_in_step`); the next call captures, and every
    call from then on is one replay. Tensors the step makes anew (gradients, temporaries) live in
    the graph's pool; those it mutates must be made before it.
    """

    def __init__(self, step, warm_ups: int = 2):
        self.step, self.warm_ups = step, warm_ups
        self.stream = torch.cuda.Stream()
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None

    def __call__(self) -> None:
        if self.graph is None:
            self.calls += 1
            self.stream.wait_stream(torch.cuda.current_stream())
            if self.calls <= self.warm_ups:
                with torch.cuda.stream(self.stream):
                    self.step()
                torch.cuda.current_stream().wait_stream(self.stream)
                return
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                self.step()
            self.graph = graph
        self.graph.replay()
