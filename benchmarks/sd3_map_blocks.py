"""Which MM-DiT blocks' T2I maps should LocalBlend read? Measured on the model's own maps of photos
with known object masks (PIE-Bench's mapping_file.json: blended_word's source word and its mask).

    python benchmarks/sd3_map_blocks.py --model stabilityai/stable-diffusion-3.5-medium \
        --mapping PIE-Bench/mapping_file.json --limit 200 --json $OUT/sd3_map_blocks.json
    python benchmarks/sd3_map_blocks.py --model tiny-sd3-random --mapping data/shapes/mapping_file.json  # smoke

For each photo: its latents noised to each --sigmas level (x = (1 - s) x0 + s noise, one seeded noise),
one conditional forward with the source caption, and in every joint block the head-averaged T2I slice
of the joint softmax (exactly the map the editor keeps, joint_edits.py) summed over the word's CLIP
and T5 tokens, averaged over the noise levels. Scores per block against the mask on the token grid:
AUROC (threshold-free) and the IoU of LocalBlend's own rule (3x3 max-pool, > 0.3 of the max). The
top-5 blocks by AUROC are chosen on the even entries and the chosen set's IoU is reported on the odd
ones, beside the default (Shin et al.'s SD3.5-medium blocks scaled to the depth), so the choice is
not scored on the photos that chose it. On random weights the numbers mean nothing (no block
carries a map); the run only checks the script.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2p_real import load_model  # noqa: E402
from p2p_real.editing.alignment import token_positions  # noqa: E402
from p2p_real.editing.joint_editing import block_of, scaled_map_blocks  # noqa: E402
from p2p_real.editing.joint_edits import image_part_and_text_slice, joint_output  # noqa: E402
from p2p_real.editing.joint_plan import sd3_text_parts  # noqa: E402
from p2p_real.images import load_image, to_tensor  # noqa: E402
from p2p_real.joint_attention import JointAttention  # noqa: E402
from p2p_real.runs.pie_bench import read_mapping_file  # noqa: E402


class MapRecorder(JointAttention):
    """Adds each joint block's head-averaged T2I map of the word's tokens (B, image tokens) to `maps`."""

    def __init__(self, block: int, maps: dict, word_weights: torch.Tensor):
        self.block, self.maps, self.word_weights = block, maps, word_weights

    def attend(self, query, key, value, scale, image_tokens):
        if key.shape[2] == image_tokens:  # attn2: no text
            return super().attend(query, key, value, scale, image_tokens)
        image_part, text_slice = image_part_and_text_slice(query, key, value, scale, image_tokens)
        word_map = (text_slice[:, :, :image_tokens].mean(1) * self.word_weights.to(text_slice)).sum(-1)  # (B, i)
        self.maps[self.block] = self.maps.get(self.block, 0) + word_map.float()
        return joint_output(image_part, text_slice, value[:, :, image_tokens:])


def word_weights(model, prompt: str, word: str) -> torch.Tensor:
    parts = sd3_text_parts(model.text.tokenizer, model.text.tokenizer_3)
    weights = []
    for part in parts:
        part_weights = torch.zeros(part.length)
        if part.tokenizer is not None:
            part_weights[token_positions(part.tokenizer, prompt, word)] = 1
        weights.append(part_weights)
    return torch.cat(weights)


def auroc(scores: torch.Tensor, positives: torch.Tensor) -> float:
    """Mann-Whitney: the chance that a pixel inside the mask scores above one outside (ties count half)."""
    scores, positives = scores.flatten().double(), positives.flatten().bool()
    count, inside = positives.numel(), int(positives.sum())
    if inside in (0, count):
        return float("nan")
    ranks = torch.empty(count, dtype=torch.float64)
    ranks[scores.argsort()] = torch.arange(1, count + 1, dtype=torch.float64)
    for value in scores.unique():  # average ranks over ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[positives].sum() - inside * (inside + 1) / 2) / (inside * (count - inside)))


def localblend_iou(word_map: torch.Tensor, mask: torch.Tensor, threshold: float = 0.3) -> float:
    pooled = F.max_pool2d(word_map[None, None], 3, 1, 1)[0, 0]
    region = pooled > threshold * pooled.max()
    return float((region & mask).sum() / (region | mask).sum().clamp_min(1))


def block_maps(model, edit, sigmas: list[float], seed: int) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """{block: (rows, columns) word map} and the mask on the token grid (bool)."""
    pixels = to_tensor([load_image(edit.image, model.resolution)]).to(model.device)
    latents = model.encode(pixels)
    embeddings = model.embed([edit.source_prompt])
    weights = word_weights(model, edit.source_prompt, edit.blend_words[0])
    maps: dict[int, torch.Tensor] = {}
    transformer = model.denoiser
    processors = {name: MapRecorder(block_of(name)[0], maps, weights) for name in transformer.attn_processors}
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed)).to(latents)
    with torch.no_grad(), model.runner.processors(processors) as denoise:
        for sigma in sigmas:
            denoise((1 - sigma) * latents + sigma * noise, sigma * 1000, embeddings)
    patch = transformer.config.patch_size
    grid = (latents.shape[-2] // patch, latents.shape[-1] // patch)
    mask = F.interpolate(torch.as_tensor(edit.mask)[None, None], size=grid, mode="area")[0, 0] > 0.5
    return {block: word_map[0].reshape(grid).cpu() for block, word_map in maps.items()}, mask


def set_iou(entries, blocks) -> float:
    scores = [localblend_iou(torch.stack([maps[block] for block in blocks]).mean(0), mask) for maps, mask in entries]
    return sum(scores) / max(len(scores), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-sd3-random")
    parser.add_argument("--mapping", type=Path, default=Path("data/shapes/mapping_file.json"))
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--sigmas", default="0.9,0.7,0.5,0.3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = load_model(args.model)
    edits = [edit for edit in read_mapping_file(args.mapping) if edit.blend_words and edit.mask is not None]
    edits = edits[: args.limit]
    sigmas = [float(sigma) for sigma in args.sigmas.split(",")]
    entries = [block_maps(model, edit, sigmas, args.seed) for edit in edits]
    blocks = sorted(entries[0][0])
    table = {block: {"auroc": sum(auroc(maps[block], mask) for maps, mask in entries) / len(entries),
                     "iou": sum(localblend_iou(maps[block], mask) for maps, mask in entries) / len(entries)}
             for block in blocks}
    choosing, reporting = entries[0::2], entries[1::2] or entries[0::2]
    choice_auroc = {block: sum(auroc(maps[block], mask) for maps, mask in choosing) / len(choosing) for block in blocks}
    chosen = sorted(blocks, key=lambda block: -choice_auroc[block])[:5]
    depth = model.denoiser.config.num_layers
    default = sorted(scaled_map_blocks(depth))
    print(f"{len(entries)} photos, sigmas {sigmas}, {depth} blocks")
    print("block  AUROC   LocalBlend IoU")
    for block in blocks:
        print(f"{block:5d}  {table[block]['auroc']:.3f}   {table[block]['iou']:.3f}")
    result = {"model": args.model, "photos": len(entries), "sigmas": sigmas, "blocks": table, "chosen": chosen,
              "chosen_iou_held_out": set_iou(reporting, chosen), "default": default,
              "default_iou_held_out": set_iou(reporting, default)}
    print(f"chosen on even photos {chosen}: IoU {result['chosen_iou_held_out']:.3f} on odd ones; "
          f"default {default}: {result['default_iou_held_out']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
