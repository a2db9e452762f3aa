"""Differential test: `bench edit`'s scoring against a transcription of PIE-Bench's own evaluation
(cure-lab/PnPInversion, evaluation/evaluate.py: mask_decode, calculate_metric; and
evaluation/matrics_calculator.py: MetricsCalculator, LossG, VitExtractor), on synthetic 512x512
images, real and made-up mask strings, and identical random networks. The transcription keeps the
reference's own steps (numpy HWC arrays, 0-255 or /255, torchmetrics' metric classes, the qkv
reshape of the last block, the CLIP processor's PIL resize) so that a drift on our side shows."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
from torchmetrics.regression import MeanSquaredError
from torchvision import transforms

from p2p_real.eval.clip_score import ClipScore
from p2p_real.eval.lpips_metric import LPIPS
from p2p_real.eval.pie_bench import decode_mask
from p2p_real.eval.pie_bench_protocol import Protocol, clip_pixels, image_scores
from p2p_real.eval.scores import MetricModels
from p2p_real.eval.structure import StructureDistance

MAPPING = Path(__file__).parents[2] / "data" / "pie_bench" / "mapping_file.json"
TOLERANCE = 1e-4  # relative
PROMPT = "a photo of a red cat sitting on a wooden table"


# ---- the transcription (PnPInversion, evaluation/) ---------------------------------------------

def reference_mask_decode(encoded_mask, image_shape=(512, 512)):
    length = image_shape[0] * image_shape[1]
    mask_array = np.zeros((length,))
    for i in range(0, len(encoded_mask), 2):
        splice_len = min(encoded_mask[i + 1], length - encoded_mask[i])
        for j in range(splice_len):
            mask_array[encoded_mask[i] + j] = 1
    mask_array = mask_array.reshape(image_shape[0], image_shape[1])
    mask_array[0, :] = 1
    mask_array[-1, :] = 1
    mask_array[:, 0] = 1
    mask_array[:, -1] = 1
    return mask_array


def unit_pair(img_pred, img_gt, mask_pred, mask_gt, batch=True):
    """MetricsCalculator.calculate_psnr & co: /255, times the masks, CHW (and a batch axis)."""
    img_pred = np.array(img_pred).astype(np.float32) / 255 * np.array(mask_pred).astype(np.float32)
    img_gt = np.array(img_gt).astype(np.float32) / 255 * np.array(mask_gt).astype(np.float32)
    pred, gt = torch.tensor(img_pred).permute(2, 0, 1), torch.tensor(img_gt).permute(2, 0, 1)
    return (pred.unsqueeze(0), gt.unsqueeze(0)) if batch else (pred.contiguous(), gt.contiguous())


def reference_background(metric, lpips_network, src_image, tgt_image, mask):
    """evaluate.calculate_metric for "<metric>_unedit_part", with mask (H, W, 3)."""
    if (1 - mask).sum() == 0:
        return math.nan  # the reference returns the string "nan"
    pair = unit_pair(src_image, tgt_image, 1 - mask, 1 - mask)
    if metric == "psnr":
        return PeakSignalNoiseRatio(data_range=1.0)(*pair).item()
    if metric == "ssim":
        return StructuralSimilarityIndexMeasure(data_range=1.0)(*pair).item()
    if metric == "mse":
        return MeanSquaredError()(*unit_pair(src_image, tgt_image, 1 - mask, 1 - mask, batch=False)).item()
    return lpips_network(pair[0] * 2 - 1, pair[1] * 2 - 1).mean().item()  # torchmetrics' LPIPS, reduction "mean"


def reference_structure_distance(vit, img_pred, img_gt, size=224):
    """calculate_structure_distance: 0-255 float arrays, no mask; LossG.calculate_global_ssim_loss with
    Resize(224, max_size=480) (no antialiasing on tensors in torchvision 0.13) and ImageNet's Normalize;
    VitExtractor.get_keys_self_sim_from_input(layer_num=last): keys from the qkv output's reshape."""
    global_transform = transforms.Compose([transforms.Resize(size, max_size=480, antialias=False),
                                           transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])

    def keys_self_sim(input_img):
        layer = vit.layers[-1].attention
        outputs = []
        hooks = [projection.register_forward_hook(lambda module, inputs, output: outputs.append(output))
                 for projection in (layer.q_proj, layer.k_proj, layer.v_proj)]
        with torch.no_grad():
            vit(input_img, interpolate_pos_encoding=True)
        for hook in hooks:
            hook.remove()
        qkv = torch.cat(outputs, dim=-1)  # DINO's one qkv Linear: (1, T, 3 D)
        patch = vit.config.patch_size
        patch_num = 1 + (input_img.shape[2] // patch) * (input_img.shape[3] // patch)
        head_num, embedding_dim = vit.config.num_attention_heads, vit.config.hidden_size
        keys = qkv.reshape(patch_num, 3, head_num, embedding_dim // head_num).permute(1, 2, 0, 3)[1]
        h, t, d = keys.shape
        x = keys.transpose(0, 1).reshape(t, h * d)[None, ...]
        norm1 = x.norm(dim=2, keepdim=True)
        factor = torch.clamp(norm1 @ norm1.permute(0, 2, 1), min=1e-08)
        return (x @ x.permute(0, 2, 1)) / factor

    img_pred = torch.from_numpy(np.transpose(np.array(img_pred).astype(np.float32), axes=(2, 0, 1)))[None]
    img_gt = torch.from_numpy(np.transpose(np.array(img_gt).astype(np.float32), axes=(2, 0, 1)))[None]
    loss = 0.0
    for a, b in zip(img_gt, img_pred):  # calculate_global_ssim_loss(img_gt, img_pred)
        target_keys_self_sim = keys_self_sim(global_transform(a).unsqueeze(0))
        keys_ssim = keys_self_sim(global_transform(b).unsqueeze(0))
        loss += F.mse_loss(keys_ssim, target_keys_self_sim)
    return float(loss)


def reference_clip(clip: ClipScore, img, txt, mask=None):
    """calculate_clip_similarity: np.uint8(img * mask), then torchmetrics' CLIPScore, whose CLIPProcessor
    (transformers 4) resizes with PIL; transformers 5 keeps that processor as CLIPImageProcessorPil."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    img = np.array(img)
    if mask is not None:
        img = np.uint8(img * np.array(mask))
    size = clip.image_size
    processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    pixels = processor(images=[torch.tensor(img).permute(2, 0, 1)], return_tensors="pt").pixel_values
    tokens = clip.tokenizer([txt], padding=True, return_tensors="pt")
    with torch.no_grad():
        image_features = clip.model.get_image_features(pixel_values=pixels)
        text_features = clip.model.get_text_features(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)
    image_features = image_features if torch.is_tensor(image_features) else image_features.pooler_output
    text_features = text_features if torch.is_tensor(text_features) else text_features.pooler_output
    image_features = image_features / image_features.norm(p=2, dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(p=2, dim=-1, keepdim=True)
    score = 100 * (image_features * text_features).sum(axis=-1)
    return max(score.mean().item(), 0.0)


# ---- inputs ------------------------------------------------------------------------------------

def mask_strings() -> dict[str, list[int]]:
    real = {f"mapping {key}": entry["mask"] for key, entry in json.loads(MAPPING.read_text()).items()}
    return {**real, "whole image": [0, 512 * 512], "empty list": [], "border only": [0, 512, 511 * 512, 512],
            "negative start": [-700, 1500, 200 * 512 + 100, 300], "past the end": [512 * 512 - 10, 400]}


MASKS = mask_strings()


@pytest.fixture(scope="module")
def metric_models() -> MetricModels:
    # The structure network resizes as PIE-Bench's (224, at most 480), so the transcription's Resize is the real one.
    # CLIP seed 3 scores every image and region of `photos` above 0, where the reference's max(., 0) hides nothing.
    return MetricModels(lpips=LPIPS("squeeze", "random", "cpu"), clip=ClipScore.random(seed=3),
                        structure=StructureDistance(StructureDistance.random().model, size=224, max_size=480))


@pytest.fixture(scope="module")
def photos() -> tuple[np.ndarray, np.ndarray]:
    """A smooth 8-bit "source" and an "edit" of it: a changed square, faint noise everywhere."""
    generator = torch.Generator().manual_seed(22)
    coarse = torch.rand(1, 3, 16, 16, generator=generator)
    source = F.interpolate(coarse, size=(512, 512), mode="bicubic", align_corners=False).clamp(0, 1)[0]
    edited = source + 0.02 * torch.randn(source.shape, generator=generator)
    edited[:, 150:330, 180:400] = torch.rand(3, 1, 1, generator=generator)
    as_uint8 = lambda image: (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # noqa: E731
    return as_uint8(source), as_uint8(edited)


def as_unit_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def assert_close(ours: float, reference: float, what: str):
    if math.isnan(reference):
        assert math.isnan(ours), f"{what}: the reference gives NaN, we give {ours}"
    else:
        assert ours == pytest.approx(reference, rel=TOLERANCE), f"{what}: ours {ours}, the reference {reference}"


# ---- the comparisons ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(MASKS))
def test_mask_decoding_equals_the_reference(name):
    assert np.array_equal(decode_mask(MASKS[name]), reference_mask_decode(MASKS[name]).astype(np.float32))


@pytest.mark.parametrize("name", list(MASKS))
def test_background_metrics_and_clip_on_the_edited_region_equal_the_reference(name, metric_models, photos):
    source, edited = photos
    mask = decode_mask(MASKS[name])
    ours = image_scores(as_unit_tensor(source), as_unit_tensor(edited), mask, PROMPT,
                        MetricModels(lpips=metric_models.lpips, clip=metric_models.clip))
    mask3 = reference_mask_decode(MASKS[name])[:, :, np.newaxis].repeat([3], axis=2)
    lpips_network = metric_models.lpips.network
    # evaluate.py passes (src_image, tgt_image) as (img_pred, img_gt): the metrics are symmetric.
    for metric in ("psnr", "ssim", "mse", "lpips"):
        assert_close(ours[f"{metric}_bg"], reference_background(metric, lpips_network, source, edited, mask3),
                     f"{metric} outside the mask {name}")
    reference_region = reference_clip(metric_models.clip, edited, PROMPT, mask3)
    assert reference_region > 0
    assert_close(ours["clip_edited"], reference_region, f"CLIP in {name}")
    assert_close(ours["clip_whole"], reference_clip(metric_models.clip, edited, PROMPT), "CLIP of the whole image")
    if name == "whole image":
        assert all(math.isnan(ours[key]) for key in ("psnr_bg", "ssim_bg", "mse_bg", "lpips_bg"))


def test_structure_distance_equals_the_reference_and_the_splice_input_does_not(metric_models, photos):
    source, edited = photos
    reference = reference_structure_distance(metric_models.structure.model, source, edited)
    models = MetricModels(structure=metric_models.structure)
    ours = image_scores(as_unit_tensor(source), as_unit_tensor(edited), None, PROMPT, models)["structure"]
    assert_close(ours, reference, "structure distance")
    # The comparison can fail: [0, 1] pixels with an antialiased resize are another number.
    splice = image_scores(as_unit_tensor(source), as_unit_tensor(edited), None, PROMPT, models,
                          Protocol(structure_pixels="splice"))["structure"]
    assert splice != pytest.approx(reference, rel=100 * TOLERANCE)


def test_clip_pixels_equal_the_processors_and_a_float_resize_would_fail(metric_models, photos):
    """The edited region's pixels as CLIP sees them equal the processor's; ClipScore's own float resize
    (antialiased bicubic, unclamped, overshooting below 0 at the black mask edge) is another number."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    _, edited = photos
    clip = metric_models.clip
    mask = decode_mask(MASKS["mapping 000000000001"])
    region = as_unit_tensor(edited) * torch.from_numpy(mask)
    size = clip.image_size
    processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    reference_pixels = processor(images=[torch.from_numpy(np.uint8(edited * mask[:, :, None])).permute(2, 0, 1)],
                                 return_tensors="pt").pixel_values
    torch.testing.assert_close(clip.preprocess(clip_pixels(region, size)), reference_pixels, rtol=0, atol=1e-5)
    reference = reference_clip(clip, edited, PROMPT, mask[:, :, None].repeat(3, axis=2))
    assert clip(region, [PROMPT])[0].item() != pytest.approx(reference, rel=TOLERANCE)
