"""Evaluation metrics: pixel metrics, background masking, LPIPS, CLIP score, structure distance.

The networks are random-weight builds (nothing can be downloaded here), so the tests check the
plumbing and the math, not the trained networks' values.
"""
import math
import time

import pytest
import torch
import torch.nn.functional as F

from p2p_real.errors import MetricLoadError
from p2p_real.eval import metrics
from p2p_real.eval.clip_score import CLIP_MEAN, CLIP_STD, ClipScore
from p2p_real.eval.lpips_metric import LPIPS
from p2p_real.eval.structure import StructureDistance


def images_in(generator, shape, low=0.0, high=1.0):
    return low + (high - low) * torch.rand(shape, generator=generator)


def centre_mask(batch, size, margin):
    """(B, 1, size, size) edit mask: 1 in the centre square, 0 in a border `margin` wide."""
    mask = torch.zeros(batch, 1, size, size)
    mask[..., margin : size - margin, margin : size - margin] = 1
    return mask


@pytest.fixture(scope="module")
def lpips_alex():
    return LPIPS("alex", "random", "cpu")


@pytest.fixture(scope="module")
def clip():
    # A seed whose random CLIP gives these tests' images and prompts positive cosines (most seeds give
    # negative ones, which the score clamps to 0 and which would make the comparisons vacuous).
    return ClipScore.random(seed=3)


@pytest.fixture(scope="module")
def structure():
    return StructureDistance.random(seed=0)


# ---- pixel metrics ---------------------------------------------------------------------------


def test_psnr_of_gaussian_noise_matches_its_sigma(generator):
    sigma = 0.02
    # Values in [0.2, 0.8]: 5 sigma of noise stays inside [0, 1], so the clamp changes nothing.
    clean = images_in(generator, (2, 3, 128, 128), 0.2, 0.8)
    noisy = clean + sigma * torch.randn(clean.shape, generator=generator)
    assert ((noisy > 0) & (noisy < 1)).all()
    expected = 10 * math.log10(1 / sigma**2)  # 33.98 dB
    assert torch.allclose(metrics.psnr(noisy, clean), torch.full((2,), expected), atol=0.1)
    assert torch.allclose(metrics.psnr(noisy, clean), 10 * torch.log10(1 / metrics.mse(noisy, clean)), atol=1e-4)


def test_identical_images_give_infinite_psnr_unit_ssim_zero_mse(generator):
    images = images_in(generator, (2, 3, 32, 32))
    assert torch.isinf(metrics.psnr(images, images)).all()
    assert torch.allclose(metrics.ssim(images, images), torch.ones(2))
    assert torch.equal(metrics.mse(images, images), torch.zeros(2))


def test_mse_of_a_known_offset(generator):
    images = images_in(generator, (2, 3, 16, 16), 0.0, 0.5)
    assert torch.allclose(metrics.mse(images + 0.1, images), torch.full((2,), 0.01), atol=1e-6)


# ---- masks: PIE-Bench's background and edited part ------------------------------------------


def test_masked_and_background_split_the_image(generator):
    images = images_in(generator, (2, 3, 16, 16))
    mask = centre_mask(2, 16, 4)
    assert torch.equal(metrics.masked(images, mask) + metrics.background(images, mask), images)
    assert (metrics.background(images, mask)[..., 4:12, 4:12] == 0).all()
    assert (metrics.masked(images, mask)[..., :4, :] == 0).all()


def test_background_metrics_ignore_changes_inside_the_edit_mask_only(generator, lpips_alex):
    source = images_in(generator, (1, 3, 64, 64))
    mask = centre_mask(1, 64, 16)
    inside = source.clone()
    inside[..., 16:48, 16:48] = images_in(generator, (1, 3, 32, 32))  # the edit, inside the mask
    outside = inside.clone()
    outside[..., :8, :8] = 1 - outside[..., :8, :8]  # a change in the background
    edited = torch.cat([inside, outside])  # (2, 3, 64, 64)
    sources, masks = source.expand(2, -1, -1, -1), mask.expand(2, -1, -1, -1)
    edited_background, source_background = metrics.background(edited, masks), metrics.background(sources, masks)

    mse = metrics.mse(edited_background, source_background)
    psnr = metrics.psnr(edited_background, source_background)
    lpips = lpips_alex(edited_background, source_background)
    assert mse[0] == 0 and torch.isinf(psnr[0]) and lpips[0] == 0
    assert mse[1] > 0 and torch.isfinite(psnr[1]) and lpips[1] > 0
    assert metrics.mse(edited, sources)[0] > 0  # without the mask the edit does count


# ---- LPIPS -----------------------------------------------------------------------------------


def test_lpips_is_zero_for_identical_images(generator, lpips_alex):
    images = images_in(generator, (2, 3, 64, 64))
    assert torch.equal(lpips_alex(images, images), torch.zeros(2))
    squeeze = LPIPS("squeeze", "random", "cpu")
    assert torch.equal(squeeze(images, images), torch.zeros(2))


def test_lpips_grows_with_noise(generator, lpips_alex):
    clean = images_in(generator, (1, 3, 64, 64), 0.2, 0.8).expand(3, -1, -1, -1)
    sigmas = torch.tensor([0.02, 0.05, 0.15]).view(3, 1, 1, 1)
    noise = torch.randn((1, 3, 64, 64), generator=generator)
    distances = lpips_alex((clean + sigmas * noise).clamp(0, 1), clean)
    assert distances.shape == (3,)
    assert (distances > 0).all()
    assert (distances.diff() > 0).all(), distances


def test_lpips_pretrained_without_network_fails_quickly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached backbone
    monkeypatch.setattr("p2p_real.eval.lpips_metric.host_reachable", lambda url: False)  # offline, even where not
    started = time.perf_counter()
    with pytest.raises(MetricLoadError) as error:
        LPIPS("alex", "pretrained", "cpu")
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert "alexnet-owt-7be5be79.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "\n" not in message


def test_lpips_rejects_an_unknown_network():
    with pytest.raises(ValueError, match="vgg"):
        LPIPS("vgg", "random")


# ---- CLIP score ------------------------------------------------------------------------------


def test_clip_score_range_determinism_and_batch_order(generator, clip):
    images = images_in(generator, (3, 3, 48, 40))
    prompts = ["a photo of a cat", "a red car on a street", "mountains"]
    scores = clip(images, prompts)
    assert scores.shape == (3,)
    assert ((scores > 0) & (scores <= 100)).all()
    assert len(set(scores.tolist())) == 3
    assert torch.equal(clip(images, prompts), scores)
    reversed_scores = clip(images.flip(0), prompts[::-1])
    assert torch.allclose(reversed_scores, scores.flip(0), atol=1e-4)
    # The same image and prompt score the same wherever they sit in the batch.
    repeated = clip(images[:1].expand(2, -1, -1, -1), prompts[:1] * 2)
    assert torch.allclose(repeated, scores[:1].expand(2), atol=1e-4)


def test_clip_preprocessing_resizes_and_normalises_a_512_image(generator, clip):
    image = images_in(generator, (1, 3, 512, 512))
    resized = F.interpolate(image, size=(32, 32), mode="bicubic", align_corners=False, antialias=True)
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    assert torch.allclose(clip.preprocess(image), (resized - mean) / std, atol=1e-6)


def test_clip_preprocessing_matches_transformers_image_processor(generator, clip):
    from transformers import CLIPImageProcessor

    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    image = images_in(generator, (1, 3, 75, 54))  # not square: resize, then crop the long side
    expected = processor(images=[image[0]], do_rescale=False, return_tensors="pt").pixel_values
    assert torch.allclose(clip.preprocess(image), expected, atol=1e-5)


def test_clip_score_is_100_times_the_cosine_of_the_model_features(generator, clip):
    images = images_in(generator, (2, 3, 32, 32))
    prompts = ["a dog", "a bowl of soup on a wooden table"]
    pixels = (images - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    tokens = clip.tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        image_features = clip.model.get_image_features(pixel_values=pixels)
        text_features = clip.model.get_text_features(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)
    # transformers 5 returns an output object holding the projections; 4 returned the tensor.
    image_features = getattr(image_features, "pooler_output", image_features)
    text_features = getattr(text_features, "pooler_output", text_features)
    cosine = F.cosine_similarity(image_features, text_features, dim=-1)
    assert (cosine > 0).all()
    assert torch.allclose(clip(images, prompts), 100 * cosine, atol=1e-4)


def test_clip_score_clamps_negative_cosines_to_zero(generator):
    clip = ClipScore.random(seed=0)  # scores random images against these prompts negatively
    images, prompts = images_in(generator, (2, 3, 32, 32)), ["a dog", "mountains at sunset"]
    cosine = F.cosine_similarity(clip.image_embeddings(images), clip.text_embeddings(prompts), dim=-1)
    assert (cosine < 0).all()
    assert torch.equal(clip(images, prompts), torch.zeros(2))


def test_clip_score_agrees_with_torchmetrics(generator, clip):
    from torchmetrics.functional.multimodal import clip_score
    from transformers import CLIPImageProcessor, CLIPProcessor

    class TensorFeatures(torch.nn.Module):
        """torchmetrics 1.9 expects get_*_features to return tensors, as transformers 4 did."""

        def __init__(self, model):
            super().__init__()
            self.model, self.config = model, model.config

        def get_image_features(self, *args, **kwargs):
            return getattr(output := self.model.get_image_features(*args, **kwargs), "pooler_output", output)

        def get_text_features(self, *args, **kwargs):
            return getattr(output := self.model.get_text_features(*args, **kwargs), "pooler_output", output)

    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=clip.tokenizer,
    )
    pixels = (images_in(generator, (2, 3, 32, 32)) * 255).round().to(torch.uint8)  # torchmetrics takes 0-255
    prompts = ["a cat", "a small house by a lake"]
    expected = clip_score(pixels, prompts, model_name_or_path=lambda: (TensorFeatures(clip.model), processor))
    # torchmetrics gives max(mean over the batch, 0); with these scores all positive, that is the mean.
    ours = clip(pixels.float() / 255, prompts)
    assert (ours > 0).all()
    assert torch.allclose(ours.mean(), expected.detach(), atol=1e-3)


def test_clip_score_checks_one_prompt_per_image(generator, clip):
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        clip(images_in(generator, (2, 3, 32, 32)), ["a cat"])


def test_clip_load_of_a_missing_model_names_it():
    started = time.perf_counter()
    with pytest.raises(MetricLoadError, match="no/such-model") as error:
        ClipScore.load("no/such-model", device="cpu")
    assert "hf download no/such-model" in str(error.value)
    assert time.perf_counter() - started < 15


def test_clip_loads_from_a_folder_and_explains_a_broken_one(generator, clip, tmp_path):
    clip.model.save_pretrained(tmp_path / "clip")
    clip.tokenizer.save_pretrained(tmp_path / "clip")
    loaded = ClipScore.load(str(tmp_path / "clip"), device="cpu")
    images, prompts = images_in(generator, (2, 3, 32, 32)), ["a cat", "a house"]
    assert torch.allclose(loaded(images, prompts), clip(images, prompts), atol=1e-5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetricLoadError, match="CLIP model folder .*empty"):
        ClipScore.load(str(tmp_path / "empty"))


# ---- structure distance ----------------------------------------------------------------------


def test_structure_distance_is_zero_for_identical_images_and_symmetric(generator, structure):
    images = images_in(generator, (2, 3, 64, 64))
    others = images_in(generator, (2, 3, 64, 64))
    assert torch.equal(structure(images, images), torch.zeros(2))
    distances = structure(images, others)
    assert distances.shape == (2,)
    assert (distances > 0).all() and (distances <= 4).all()
    assert torch.allclose(structure(others, images), distances, atol=1e-6)


def test_structure_keys_equal_those_seen_by_a_hook_on_the_key_projection(generator, structure):
    pixels = structure.preprocess(images_in(generator, (2, 3, 64, 64)))
    assert pixels.shape == (2, 3, 32, 32)
    captured = []
    key_projection = structure.model.layers[-1].attention.k_proj
    handle = key_projection.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with torch.no_grad():
            structure.model(pixels)
    finally:
        handle.remove()
    keys = structure.keys(pixels)
    assert keys.shape == (2, 1 + 4 * 4, 32)  # CLS + 4x4 patches, 4 heads x 8 concatenated
    assert torch.allclose(keys, captured[0], atol=1e-6)


def test_structure_self_similarity_is_a_cosine_matrix(generator, structure):
    similarity = structure.self_similarity(images_in(generator, (1, 3, 32, 32)))
    assert similarity.shape == (1, 17, 17)
    assert torch.allclose(similarity.diagonal(dim1=1, dim2=2), torch.ones(1, 17), atol=1e-5)
    assert torch.allclose(similarity, similarity.transpose(1, 2), atol=1e-6)


def test_structure_resizes_the_shorter_side_and_caps_the_longer(generator, structure):
    assert structure.preprocess(images_in(generator, (1, 3, 48, 96))).shape == (1, 3, 32, 64)
    assert structure.preprocess(images_in(generator, (1, 3, 40, 200))).shape == (1, 3, 12, 64)
    # A non-square input runs, with interpolated position embeddings.
    assert structure(images_in(generator, (1, 3, 48, 96)), images_in(generator, (1, 3, 48, 96))).item() > 0


def test_structure_loads_from_a_folder_and_explains_a_missing_model(generator, structure, tmp_path):
    structure.model.save_pretrained(tmp_path / "dino")
    loaded = StructureDistance.load(str(tmp_path / "dino"), device="cpu")
    loaded.size, loaded.max_size = structure.size, structure.max_size  # the random model's 32x32 input
    images, references = images_in(generator, (1, 3, 32, 32)), images_in(generator, (1, 3, 32, 32))
    assert torch.allclose(loaded(images, references), structure(images, references), atol=1e-6)
    with pytest.raises(MetricLoadError, match="no/such-dino"):
        StructureDistance.load("no/such-dino", device="cpu")
