import json
import os
import stat

import pytest
import torch
from PIL import Image

from p2p_real import artifacts
from p2p_real.artifacts import (
    METADATA_FILE,
    TENSORS_FILE,
    Inversion,
    load_inversion,
    read_record,
    save_inversion,
    tensors_sha256,
)
from p2p_real.errors import ArtifactError
from p2p_real.images import save_png
from p2p_real.random_models import tiny_random


def make_inversion(model, generator) -> Inversion:
    return Inversion(
        prompt="a cat sitting on a mat",
        noise_latents=torch.randn(4, 16, 16, generator=generator),
        null_text_embeddings=torch.randn(5, 77, 32, generator=generator),
        image=torch.randint(0, 256, (128, 128, 3), generator=generator, dtype=torch.uint8),
        reconstruction=torch.randint(0, 256, (128, 128, 3), generator=generator, dtype=torch.uint8),
        method="null-text",
        num_steps=5,
        guidance_scale=7.5,
        model_name=model.name,
        model_fingerprint=model.fingerprint,
        scheduler_config=dict(model.scheduler_config),
        options={"num_inner_steps": 10},
        metrics={"psnr": 21.5},
        source_path="cat.jpg",
    )


def test_round_trip_is_exact(tmp_path, tiny_model, generator):
    inversion = make_inversion(tiny_model, generator)
    save_inversion(inversion, tmp_path / "cat")
    loaded = load_inversion(tmp_path / "cat", tiny_model)
    for name, value in inversion.tensors().items():
        assert torch.equal(getattr(loaded, name), value), name
    assert loaded.metadata() == inversion.metadata()
    assert not list((tmp_path / "cat").glob("*.partial"))
    assert load_inversion(tmp_path / "cat" / METADATA_FILE).prompt == inversion.prompt


def test_truncated_tensors_are_reported(tmp_path, tiny_model, generator):
    save_inversion(make_inversion(tiny_model, generator), tmp_path)
    tensors = tmp_path / TENSORS_FILE
    tensors.write_bytes(tensors.read_bytes()[: tensors.stat().st_size // 2])
    with pytest.raises(ArtifactError, match="truncated or modified.*--force"):
        load_inversion(tmp_path)


def test_damaged_or_foreign_json_is_reported(tmp_path, tiny_model, generator):
    save_inversion(make_inversion(tiny_model, generator), tmp_path)
    (tmp_path / METADATA_FILE).write_text('{"prompt": "a cat"')
    with pytest.raises(ArtifactError, match="damaged JSON"):
        load_inversion(tmp_path)
    (tmp_path / METADATA_FILE).write_text(json.dumps({"prompt": "a cat"}))
    with pytest.raises(ArtifactError, match="not a p2p-real inversion"):
        load_inversion(tmp_path)
    with pytest.raises(ArtifactError, match="no inversion.json"):
        load_inversion(tmp_path / "elsewhere")


def test_an_artifact_of_another_model_is_refused(tmp_path, tiny_model, generator):
    save_inversion(make_inversion(tiny_model, generator), tmp_path)
    other = tiny_random(seed=5)  # same architecture, other weights
    assert other.fingerprint != tiny_model.fingerprint
    with pytest.raises(ArtifactError, match="made with model 'tiny-random'.*--model"):
        load_inversion(tmp_path, other)


def test_the_record_says_which_photo_and_content_and_files_follow_the_umask(tmp_path, tiny_model, generator):
    inversion = make_inversion(tiny_model, generator)
    inversion.source_sha256 = "ab" * 32
    previous = os.umask(0o027)
    try:
        save_inversion(inversion, tmp_path / "cat")
        save_png(Image.new("RGB", (8, 8)), tmp_path / "cat" / "source.png", {"prompt": "a cat"})
    finally:
        os.umask(previous)
    for path in (tmp_path / "cat").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path  # not safetensors' own 0600
    record = read_record(tmp_path / "cat")
    assert record["source_sha256"] == "ab" * 32 and record["tensors_sha256"] == tensors_sha256(inversion)
    assert load_inversion(tmp_path / "cat").source_sha256 == "ab" * 32
    assert read_record(tmp_path / "elsewhere") is None


def test_a_replaced_artifact_loses_its_record_first(tmp_path, tiny_model, generator, monkeypatch):
    save_inversion(make_inversion(tiny_model, generator), tmp_path)
    monkeypatch.setattr(artifacts, "write_atomic", lambda path, data: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_inversion(make_inversion(tiny_model, generator), tmp_path)
    assert read_record(tmp_path) is None  # a write cut short leaves no record that trusts it
