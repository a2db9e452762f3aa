"""LocalBlend's mask against the reference's recipe written out independently in NumPy, loop by loop:
the blend words' maps summed over their tokens, averaged over heads and layers, 3x3 max-pooled
(stride 1, padding 1), resized by nearest neighbour to the latent, divided by the max, over the
threshold, and united with the source's mask."""
import numpy as np
import pytest
import torch

from p2p_real.editing.local_blend import LocalBlend, blend_masks
from p2p_real.editing.plan import BlendPlan


def reference_mask(maps: np.ndarray, words: list[int], size: int, threshold: float) -> np.ndarray:
    """maps: (layers*heads, r, r, keys) of one prompt -> (size, size) bool."""
    heat = maps[..., words].sum(-1).mean(0)  # (r, r)
    r = heat.shape[0]
    pooled = np.empty_like(heat)
    for i in range(r):
        for j in range(r):
            pooled[i, j] = heat[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2].max()
    resized = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            resized[i, j] = pooled[i * r // size, j * r // size]  # nearest: floor(dst * in / out)
    return resized / resized.max() > threshold


@pytest.mark.parametrize("resolution, size", [(4, 8), (8, 8), (16, 64)])
def test_masks_equal_an_independent_computation(generator, resolution, size):
    keys, heads = 77, 2
    # peaky, so a mask covers part of the picture
    maps = torch.rand(3, heads, resolution, resolution, keys, generator=generator, dtype=torch.float64) ** 12
    source_words, target_words = [[5], [5, 6]], [[7, 8], [3]]
    weights = torch.zeros(2, 2, keys, dtype=torch.float64)
    for row in range(2):
        weights[row, 0, source_words[row]] = 1
        weights[row, 1, target_words[row]] = 1
    thresholds = torch.tensor([0.5, 0.7], dtype=torch.float64)
    plan = BlendPlan(weights, thresholds, start_steps=(0, 0), enabled=(True, True))
    masks = blend_masks(plan, maps, (size, size))
    assert masks.shape == (2, 1, size, size)
    for row in range(2):
        expected = (reference_mask(maps[0].numpy(), source_words[row], size, float(thresholds[row]))
                    | reference_mask(maps[row + 1].numpy(), target_words[row], size, float(thresholds[row])))
        assert 0 < expected.mean() < 1
        assert np.array_equal(masks[row, 0].numpy().astype(bool), expected), row


def test_blend_keeps_the_source_outside_and_waits_for_its_start(generator):
    maps = torch.rand(3, 1, 4, 4, 77, generator=generator) ** 12
    weights = torch.zeros(2, 2, 77)
    weights[:, :, 5] = 1
    plan = BlendPlan(weights, torch.tensor([0.6, 0.6]), start_steps=(2, 0), enabled=(True, False))
    blend = LocalBlend(plan, lambda: maps)
    latents = torch.randn(3, 4, 8, 8, generator=generator)
    assert torch.equal(blend(1, latents), latents)  # before target 0's start, and target 1 never blends
    after = blend(2, latents)
    mask = blend.last_masks[0].bool().expand(4, -1, -1)
    assert 0 < mask.float().mean() < 1
    assert torch.equal(after[0], latents[0]) and torch.equal(after[2], latents[2])
    assert torch.equal(after[1][~mask], latents[0][~mask])  # outside: the source, exactly
    torch.testing.assert_close(after[1][mask], latents[1][mask], rtol=0, atol=1e-6)  # inside: s + (t - s)
