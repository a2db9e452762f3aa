"""Painted masks: read from any image as documented, put on the latent grid as an independent NumPy
computation says, and, the invariant, the edit's final latents outside the region are the source
branch's exactly, alone or intersected with LocalBlend's word mask."""
import numpy as np
import pytest
import torch
from PIL import Image
from sampling_helpers import run_plan

from p2p_real.editing.edit import edit
from p2p_real.editing.local_blend import LocalBlend, blend_masks
from p2p_real.editing.options import EditOptions
from p2p_real.editing.painted_mask import latent_region, latent_regions, painted_values
from p2p_real.editing.plan import BlendPlan, build_plan
from p2p_real.errors import OptionError
from p2p_real.images import load_image
from p2p_real.pipeline import invert

SOURCE = "a close-up photo of a tabby cat"
DOG = "a close-up photo of a tabby dog"
STEPS = 6


@pytest.fixture(scope="module")
def inversion(tiny_model):
    photo = load_image("data/photos/chelsea.jpg", tiny_model.resolution)
    [result] = invert(tiny_model, [photo], [SOURCE], method="ddim", num_steps=STEPS)
    return result


def sizes(inversion):
    """(photo size, latent size) of an inversion: (128, 128) and (16, 16) for the tiny model."""
    return tuple(inversion.image.shape[:2]), tuple(inversion.noise_latents.shape[-2:])


def blob_mask(generator, size: int, blocks: int = 8) -> torch.Tensor:
    """(size, size) in [0, 1]: random blocks painted (about 40%), with grey speckle everywhere."""
    painted = (torch.rand(blocks, blocks, generator=generator) < 0.4).float()
    painted = painted.repeat_interleave(size // blocks, 0).repeat_interleave(size // blocks, 1)
    speckle = torch.rand(size, size, generator=generator) * 0.3
    return (painted * 0.7 + speckle).clamp(0, 1)


def test_images_give_their_brightness_or_their_alpha(generator):
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=generator)))
    grey = rng.integers(0, 256, (30, 50), dtype=np.uint8)
    colour = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (30, 50), dtype=np.uint8)
    np.testing.assert_array_equal(painted_values(Image.fromarray(grey)).numpy(), grey / np.float32(255))
    brightness = np.asarray(Image.fromarray(colour).convert("L")) / np.float32(255)
    np.testing.assert_array_equal(painted_values(Image.fromarray(colour)).numpy(), brightness)
    with_alpha = Image.fromarray(np.dstack([colour, alpha]), "RGBA")
    np.testing.assert_array_equal(painted_values(with_alpha).numpy(), alpha / np.float32(255))  # alpha, not brightness
    opaque = Image.fromarray(np.dstack([colour, np.full_like(alpha, 255)]), "RGBA")
    # all opaque: an editor's black-and-white mask
    np.testing.assert_array_equal(painted_values(opaque).numpy(), brightness)
    sixteen_bit = Image.fromarray(grey.astype(np.uint16) * 257)
    assert sixteen_bit.mode.startswith("I;16")
    np.testing.assert_array_equal(painted_values(sixteen_bit).numpy(), grey / np.float32(255))
    values = torch.rand(7, 9, generator=generator)
    assert torch.equal(painted_values(values), values)


@pytest.mark.parametrize("bad, needle", [
    (torch.rand(2, 8, 8), "shape (H, W)"),
    (torch.full((8, 8), 1.5), "values in [0, 1]"),
    (torch.full((8, 8), float("nan")), "values in [0, 1]"),
    (np.ones((8, 8)), "got ndarray"),
])
def test_bad_tensors_are_refused_by_name(bad, needle):
    with pytest.raises(OptionError, match="^mask: ") as caught:
        painted_values(bad)
    assert needle in str(caught.value)


@pytest.mark.parametrize("height, width", [(256, 384), (384, 256), (128, 128)])
def test_the_region_is_the_painted_share_of_each_cell_of_the_centre_square(generator, height, width):
    """Independently: the centre square (as the photo is cropped), each latent cell's 8x8 pixels of
    the 128-pixel photo averaged, over one half. Quarter steps of grey keep every mean exact."""
    bias = torch.rand(height // 16, width // 16, generator=generator).repeat_interleave(16, 0).repeat_interleave(16, 1)
    values = (torch.rand(height, width, generator=generator) * 8 * bias).round().clamp(max=4) / 4
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = values[top : top + side, left : left + side].double().numpy()
    block = side // 16
    expected = square.reshape(16, block, 16, block).mean(axis=(1, 3)) > 0.5
    assert 0.1 < expected.mean() < 0.9
    region = latent_region(values, (128, 128), (16, 16))
    assert region.shape == (16, 16) and region.dtype == torch.float32
    np.testing.assert_array_equal(region.numpy().astype(bool), expected)


def test_a_mask_with_no_cell_half_painted_is_refused(generator):
    line = torch.zeros(128, 128)
    line[:, 40] = torch.rand(128, generator=generator) * 0.5 + 0.5  # white, but one pixel of each 8-pixel cell
    with pytest.raises(OptionError, match="no latent cell .8x8 pixels of the photo. is more than half white"):
        latent_region(line, (128, 128), (16, 16))
    with pytest.raises(OptionError, match="2 targets but 3 masks"):
        latent_regions([line] * 3, 2, (128, 128), (16, 16))


def test_final_latents_outside_the_painted_region_are_the_sources(tiny_model, inversion, generator):
    photo_size, latent_size = sizes(inversion)
    region = latent_region(blob_mask(generator, photo_size[0]), photo_size, latent_size)
    assert 0.1 < region.mean() < 0.9, "the test needs a region with both inside and outside"
    sampled = run_plan(tiny_model, inversion, DOG, EditOptions(), [region])
    latents = sampled.latents  # (2, C, h, w): source, target
    assert torch.equal(sampled.masks[0, 0], region)
    inside = region.bool().expand_as(latents[1])
    assert torch.equal(latents[1][~inside], latents[0][~inside])  # outside: the source, bit for bit
    change = (latents[1][inside] - latents[0][inside]).abs()
    assert change.max() > 1e-2 and (change > 1e-5).float().mean() > 0.9  # inside: the edit, nearly everywhere
    unmasked = run_plan(tiny_model, inversion, DOG, EditOptions()).latents
    assert (unmasked[1][~inside] - unmasked[0][~inside]).abs().max() > 1e-2  # without it, the outside changes too


def test_with_blend_words_only_the_intersection_changes(tiny_model, inversion, generator):
    photo_size, latent_size = sizes(inversion)
    region = latent_region(blob_mask(generator, photo_size[0]), photo_size, latent_size)
    # random attention is nearly flat: about half the grid
    options = EditOptions(blend_words=("cat", "dog"), blend_threshold=0.97)
    sampled = run_plan(tiny_model, inversion, DOG, options, [region])
    latents, mask = sampled.latents, sampled.masks[0, 0]
    # The word mask of the last step, from the maps summed over all steps, as LocalBlend read them.
    plan = build_plan(tiny_model, SOURCE, [DOG], [options], STEPS, [region])
    words = blend_masks(plan.blend, sampled.cross_maps, latent_size)[0, 0]
    assert torch.equal(mask, words * region)
    assert 0 < mask.sum() < min(words.sum(), region.sum())  # each of the two cuts something off the other
    inside = mask.bool().expand_as(latents[1])
    assert torch.equal(latents[1][~inside], latents[0][~inside])
    assert (latents[1][inside] - latents[0][inside]).abs().max() > 1e-3


def test_local_blend_applies_the_painting_from_the_first_step_and_the_words_from_their_start(generator):
    maps = torch.rand(4, 1, 4, 4, 77, generator=generator) ** 12
    weights = torch.zeros(3, 2, 77)
    weights[:, :, 5] = 1
    painted = (torch.rand(3, 1, 8, 8, generator=generator) < 0.5).float()
    painted[1] = 1  # target 1 has no painted mask: ones, as build_plan makes them
    plan = BlendPlan(weights, torch.tensor([0.6, 0.6, 0.6]), start_steps=(2, 2, 2), enabled=(True, True, False),
                     painted_masks=painted, painted=(True, False, True))
    assert plan.confined == (True, True, True)
    blend = LocalBlend(plan, lambda: maps)
    latents = torch.randn(4, 4, 8, 8, generator=generator)
    before = blend(1, latents)  # before the words' start: the painting alone; target 1 left alone
    assert torch.equal(before[0], latents[0]) and torch.equal(before[2], latents[2])
    for row in (0, 2):
        keep = painted[row].bool().logical_not().expand(4, -1, -1)
        assert torch.equal(before[row + 1][keep], latents[0][keep])
        torch.testing.assert_close(before[row + 1][~keep], latents[row + 1][~keep], rtol=0, atol=1e-6)
    after = blend(2, latents)
    words = blend_masks(plan, maps, (8, 8))
    expected = torch.stack([words[0] * painted[0], words[1], painted[2]])
    assert torch.equal(blend.last_masks, expected)
    for row in range(3):
        keep = expected[row].bool().logical_not().expand(4, -1, -1)
        assert torch.equal(after[row + 1][keep], latents[0][keep])


def test_masks_batch_one_per_target_as_each_edit_alone(tiny_model, inversion, generator):
    photo_size, latent_size = sizes(inversion)
    painted = blob_mask(generator, photo_size[0])
    image = Image.fromarray((blob_mask(generator, 96).numpy() * 255).round().astype(np.uint8))  # another size: resized
    targets = [DOG, DOG, "a close-up photo of a fluffy tabby cat"]
    options = [EditOptions(blend_words=("cat", "dog"), blend_threshold=0.97), EditOptions(), EditOptions()]
    together = edit(tiny_model, inversion, targets, options, [painted, None, image])
    assert together[1].mask is None
    assert torch.equal(together[2].mask[0], latent_region(painted_values(image), photo_size, latent_size))
    assert together[0].mask.sum() < latent_region(painted, photo_size, latent_size).sum()  # and the words' mask
    for target, option, mask, batched in zip(targets, options, [painted, None, image], together):
        alone = edit(tiny_model, inversion, target, option, mask)
        # A batch of 4 prompts is another matmul blocking than a batch of 2: float32 rounding only.
        assert (alone.edited.int() - batched.edited.int()).abs().max() <= 2
    assert not torch.equal(together[0].edited, together[1].edited)


def test_edit_refuses_bad_masks_in_the_apis_terms(tiny_model, inversion):
    with pytest.raises(OptionError, match="^mask: no latent cell"):
        edit(tiny_model, inversion, DOG, mask=torch.rand(128, 128) * 0.5)  # dark grey everywhere
    with pytest.raises(OptionError, match="^mask: 1 targets but 2 masks"):
        edit(tiny_model, inversion, DOG, mask=[torch.ones(8, 8)] * 2)
    with pytest.raises(OptionError, match="^mask: expected a float tensor"):
        edit(tiny_model, inversion, DOG, mask="mask.png")
