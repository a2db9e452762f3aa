"""Seconds and peak memory of one SD3.5-medium transformer forward (random weights) under each
attention processor: diffusers' JointAttnProcessor2_0, ours uncontrolled (JointAttention),
Prompt-to-Prompt's JointEditingAttention (windows open: the costliest step; maps-only: no cross edit),
and the plain way to the same edit, explicit (tokens x tokens) joint probabilities with the T2I slice
edited in place (as the exploring-mmdit "attention region" mode does).

    python benchmarks/sd3_joint_attention.py --size 1024 --targets 1,4 --json $OUT/sd3_joint_attention.json
    python benchmarks/sd3_joint_attention.py --tiny          # CPU smoke test: tiny config, seconds

Rows per forward: classifier-free guidance over P = source + targets prompts (2P rows). Median of
--repeats after one warm-up, synchronised; peak memory is torch.cuda.max_memory_allocated.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from diffusers import SD3Transformer2DModel
from diffusers.models.attention_processor import JointAttnProcessor2_0

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2p_real.clip_tokenizer import clip_tokenizer  # noqa: E402
from p2p_real.editing.attention_edits import edit_cross_attention  # noqa: E402
from p2p_real.editing.joint_editing import JointEditingAttention, JointLayers  # noqa: E402
from p2p_real.editing.joint_edits import replace_image_queries_keys  # noqa: E402
from p2p_real.editing.joint_plan import TextPart, build_joint_plan  # noqa: E402
from p2p_real.editing.options import EditOptions  # noqa: E402
from p2p_real.editing.state import EditState  # noqa: E402
from p2p_real.joint_attention import JointAttention  # noqa: E402
from p2p_real.rows import join_source, split_guidance, split_source, stack_for_guidance  # noqa: E402

SD35_MEDIUM = dict(sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24, attention_head_dim=64,
                   num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536,
                   pooled_projection_dim=2048, pos_embed_max_size=384, dual_attention_layers=tuple(range(13)),
                   qk_norm="rms_norm")
TINY = dict(sample_size=16, patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
            num_attention_heads=4, joint_attention_dim=32, caption_projection_dim=32, pooled_projection_dim=64,
            pos_embed_max_size=16, dual_attention_layers=(0,), qk_norm="rms_norm")


class ExplicitJointEditing(JointEditingAttention):
    """The same cross edit on explicit joint probabilities (rows x heads x tokens x tokens): the baseline."""

    def attend(self, query, key, value, scale, image_tokens):
        if not self.joint:
            return super().attend(query, key, value, scale, image_tokens)
        plan = self.plan
        (query_u, query_c), (key_u, key_c) = split_guidance(query), split_guidance(key)
        if plan.self_weights is not None:  # the same image q/k replacement, then explicit probabilities
            weight = self.state.at_step(plan.self_weights)
            query_c, key_c = replace_image_queries_keys(query_c, key_c, image_tokens, weight)
        query, key = stack_for_guidance(query_u, query_c), stack_for_guidance(key_u, key_c)
        probabilities = (query @ key.transpose(-1, -2) * scale).softmax(-1)  # (2P, h, n, n)
        unconditional, conditional = split_guidance(probabilities)
        source, targets = split_source(conditional[:, :, :image_tokens, image_tokens:])
        targets = edit_cross_attention(source[0], targets, plan.token_maps, plan.token_alphas, plan.equalizer,
                                       self.state.at_step(plan.cross_alphas)).to(probabilities.dtype)
        conditional = conditional.clone()
        conditional[:, :, :image_tokens, image_tokens:] = join_source(source, targets)
        return stack_for_guidance(unconditional, conditional) @ value


def processors(transformer, kind: str, targets: int, device):
    if kind == "diffusers":
        return JointAttnProcessor2_0()
    if kind == "ours":
        return JointAttention()
    options = EditOptions(cross_replace_steps=1.0, self_replace_steps=1.0)
    words = ["a photo of a dog", "a photo of a fox", "a photo of a cow", "a photo of a bird"]
    plan = build_joint_plan((TextPart(clip_tokenizer(), 77, "CLIP"), TextPart(None, 256, "T5")), "a photo of a cat",
                            (words * targets)[:targets], [options] * targets, 10).to(device)
    state = EditState(device)
    config = transformer.config
    layers = JointLayers.for_transformer(config, edit_blocks=[] if kind == "maps-only" else None)
    editor = ExplicitJointEditing if kind == "explicit" else JointEditingAttention
    return {name: editor(plan, state, name, layers) for name in transformer.attn_processors}


def timed(function, repeats: int, cuda: bool) -> tuple[float, float]:
    function()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        if cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), (torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="the tiny config on the CPU: a smoke test")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (latent side = size / 8)")
    parser.add_argument("--targets", default="1,4")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--kinds", default="diffusers,ours,maps-only,edit,explicit")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and not args.tiny
    device = torch.device("cuda" if cuda else "cpu")
    dtype = getattr(torch, args.dtype) if cuda else torch.float32
    config = TINY if args.tiny else SD35_MEDIUM
    size = 128 if args.tiny else args.size
    with torch.device(device):
        transformer = SD3Transformer2DModel(**config).to(dtype).eval()
    rows = []
    for targets in [int(count) for count in args.targets.split(",")]:
        batch = 2 * (1 + targets)
        generator = torch.Generator(device).manual_seed(0)
        inputs = {"hidden_states": torch.randn(batch, config["in_channels"], size // 8, size // 8, generator=generator,
                                               device=device, dtype=dtype),
                  "encoder_hidden_states": torch.randn(batch, 333, config["joint_attention_dim"], generator=generator,
                                                       device=device, dtype=dtype),
                  "pooled_projections": torch.randn(batch, config["pooled_projection_dim"], generator=generator,
                                                    device=device, dtype=dtype),
                  "timestep": torch.full((batch,), 500.0, device=device)}
        for kind in args.kinds.split(","):
            transformer.set_attn_processor(processors(transformer, kind, targets, device))
            try:
                with torch.no_grad():
                    seconds, memory = timed(lambda: transformer(**inputs), args.repeats, cuda)
            except torch.cuda.OutOfMemoryError:
                seconds, memory = float("nan"), float("inf")
                torch.cuda.empty_cache()
            rows.append({"targets": targets, "rows": batch, "kind": kind, "seconds": seconds, "peak_gib": memory})
            print(f"targets {targets} ({batch} rows)  {kind:10s} {seconds * 1000:9.1f} ms  peak {memory:6.2f} GiB",
                  flush=True)
    result = {"device": torch.cuda.get_device_name() if cuda else "cpu", "dtype": str(dtype), "size": size,
              "config": "tiny" if args.tiny else "sd3.5-medium", "rows": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
