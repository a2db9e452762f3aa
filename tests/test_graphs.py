"""CUDA-graph replays behind `denoise` and inside `controlled(model, plan)`: the same results as eager runs.

Marked `gpu`: skipped where no CUDA device is present (CI), run on the device tool with
`pytest -m gpu tests/test_graphs.py`.
"""
import pytest
import torch

from p2p_real.editing.edit import edit
from p2p_real.editing.options import EditOptions
from p2p_real.images import load_image
from p2p_real.inversion.ddim import ddim_invert
from p2p_real.inversion.null_text import null_text_optimize
from p2p_real.loading import load_model
from p2p_real.pipeline import invert

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

SOURCE = "a close-up photo of a tabby cat"
EDITS = [
    ("a close-up photo of a tabby dog", EditOptions(blend_words=("cat", "dog"), blend_threshold=0.9)),
    ("a close-up photo of a fluffy tabby cat", EditOptions(cross_replace_steps={"default_": 0.6, "fluffy": 0.3})),
    (SOURCE, EditOptions(reweights={"tabby": 2.0}, cross_replace_steps=0.5, self_replace_steps=(0.1, 0.5))),
]


@pytest.fixture(scope="module", params=[(name, dtype) for name in ("tiny-random", "tiny-sdxl-random")
                                        for dtype in ("float32", "float16")],
                ids=lambda param: "-".join(param))
def models(request):
    name, dtype = request.param  # SDXL's pooled row and size ids must be captured too
    graphed = load_model(name, device="cuda", dtype=dtype)
    eager = load_model(name, device="cuda", dtype=dtype, cuda_graphs=False)
    assert graphed.runner.graphed and not eager.runner.graphed
    return graphed, eager


@pytest.fixture(scope="module")
def inversion(models):
    graphed, _ = models
    photo = load_image("data/photos/chelsea.jpg", graphed.resolution)
    [result] = invert(graphed, [photo], [SOURCE], method="null-text", num_steps=6)
    return result


def test_graphed_denoise_equals_eager_with_and_without_gradients(models, generator):
    graphed, eager = models
    latents = torch.randn(2, 4, 16, 16, generator=generator).cuda()
    embeddings = graphed.embed(["a cat", "a dog"])
    for _ in range(3):  # the first call runs eagerly on the capture stream, the second captures, then replays
        torch.testing.assert_close(graphed.denoise(latents, 501, embeddings), eager.denoise(latents, 501, embeddings),
                                   rtol=0, atol=0)
    # Gradients: backward kernels are not deterministic, so the graphed gradient must be as close to
    # the eager one as the eager one is to a float64 reference, give or take.
    reference_model = load_model(graphed.name, device="cuda", dtype=torch.float64, cuda_graphs=False)
    exact = gradient(reference_model.denoise, latents.double(), embeddings.double())
    eager_error = relative(gradient(eager.denoise, latents, embeddings), exact)
    for _ in range(3):
        graphed_error = relative(gradient(graphed.denoise, latents, embeddings), exact)
        assert graphed_error <= 2 * eager_error + 1e-6, (graphed_error, eager_error)
    # float32 convolutions run in TF32 by cuDNN's default: 8.8e-4 measured on an H200
    assert eager_error < (3e-3 if graphed.dtype == torch.float32 else 3e-2), eager_error


def test_null_text_on_graphed_passes_matches_the_eager_loop(models, generator):
    # Each Adam iteration's forward and backward replayed from per-pass graphs: as close to a float64
    # run as the eager loop is (backward kernels are not deterministic), with the same step counts.
    graphed, eager = models
    latents = torch.randn(2, 4, 16, 16, generator=generator).cuda()
    conditional, unconditional = graphed.embed(["a cat", "a bowl of fruit"]), graphed.empty_prompt(2)
    schedule = graphed.schedule(4)
    reference_model = load_model(graphed.name, device="cuda", dtype=torch.float64, cuda_graphs=False)
    trajectory = ddim_invert(reference_model.denoise, latents.double(), conditional.double(), schedule)
    exact = null_text_optimize(reference_model.denoise, trajectory, conditional.double(), unconditional.double(),
                               schedule)
    results = {name: null_text_optimize(model.denoise, trajectory.float(), conditional, unconditional, schedule)
               for name, model in (("eager", eager), ("graphed", graphed))}
    assert [key for key in graphed.runner.graphs.replays if key[-1]], "no gradient pass was captured"
    assert torch.equal(results["graphed"].inner_steps, results["eager"].inner_steps)
    errors = {name: relative(result.reconstruction_latents, exact.reconstruction_latents)
              for name, result in results.items()}
    assert errors["graphed"] <= 2 * errors["eager"] + 1e-6, errors
    assert errors["eager"] < (1e-2 if graphed.dtype == torch.float32 else 5e-2), errors


def test_a_graphed_float64_model_returns_float64(generator):
    # `denoise` promises full precision: float64 stays float64, replayed or not.
    graphed = load_model("tiny-random", device="cuda", dtype=torch.float64)
    eager = load_model("tiny-random", device="cuda", dtype=torch.float64, cuda_graphs=False)
    latents = torch.randn(1, 4, 16, 16, generator=generator, dtype=torch.float64).cuda()
    embeddings = graphed.embed(["a cat"]).double()
    for _ in range(3):  # eager warm-up, capture, replay
        prediction = graphed.denoise(latents, 501, embeddings)
        assert prediction.dtype == torch.float64
        torch.testing.assert_close(prediction, eager.denoise(latents, 501, embeddings), rtol=0, atol=0)


def gradient(denoise, latents, embeddings):
    leaf = embeddings.clone().requires_grad_(True)
    [grad] = torch.autograd.grad(denoise(latents, 301, leaf).square().sum(), leaf)
    return grad


def relative(value, reference):
    return float((value.double() - reference).norm() / reference.norm())


def test_a_graphed_edit_equals_the_eager_edit(models, inversion):
    graphed, eager = models
    targets, options = zip(*EDITS)
    replayed = edit(graphed, inversion, list(targets), list(options))
    plain = edit(eager, inversion, list(targets), list(options))
    for fast, slow in zip(replayed, plain):
        assert torch.equal(fast.edited, slow.edited) and torch.equal(fast.reconstruction, slow.reconstruction)
        torch.testing.assert_close(fast.cross_maps, slow.cross_maps, rtol=0, atol=0)


def test_edits_in_a_row_stay_independent(models, inversion):
    """A graph captured under one plan bakes in its processors; the next edit must not replay it."""
    graphed, eager = models
    first = [edit(graphed, inversion, target, option) for target, option in EDITS]
    again = [edit(graphed, inversion, target, option) for target, option in reversed(EDITS)][::-1]
    for (target, option), one, two in zip(EDITS, first, again):
        alone = edit(eager, inversion, target, option)
        assert torch.equal(one.edited, alone.edited) and torch.equal(two.edited, alone.edited), target
    assert not torch.equal(first[0].edited, first[1].edited)
    # and the plain denoise, graphed before any edit, still replays the plain UNet afterwards
    latents = torch.randn(1, 4, 16, 16, device="cuda")
    embeddings = graphed.embed(["a cat"])
    torch.testing.assert_close(graphed.denoise(latents, 11, embeddings), eager.denoise(latents, 11, embeddings),
                               rtol=0, atol=0)


def test_null_text_on_graphs_prints_no_stream_warning():
    # torch's warm-up in make_graphed_callables used to leave an AccumulateGrad node on another
    # stream, and every GPU run printed a stream-mismatch warning that users could not act on.
    import warnings

    model = load_model("tiny-random", device="cuda")
    photo = load_image("data/photos/chelsea.jpg", model.resolution)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        invert(model, [photo], [SOURCE], method="null-text", num_steps=3)
    assert not [str(warning.message)[:80] for warning in caught], "warnings were printed"


def test_offloaded_text_encoders_visit_the_gpu_only_to_encode():
    offloaded = load_model("tiny-sdxl-random", device="cuda", offload_text_encoders=True)
    resident = load_model("tiny-sdxl-random", device="cuda", offload_text_encoders=False)
    assert all(encoder.device.type == "cpu" for encoder in offloaded.text.encoders)
    assert all(encoder.device.type == "cuda" for encoder in resident.text.encoders)
    prompts = ["a close-up photo of a tabby cat", ""]
    torch.testing.assert_close(offloaded.embed(prompts), resident.embed(prompts), rtol=0, atol=0)
    assert offloaded.embed(prompts).device.type == "cuda"
    assert all(encoder.device.type == "cpu" for encoder in offloaded.text.encoders)
    assert offloaded.fingerprint == resident.fingerprint
