import json
import math
import shutil
from pathlib import Path

from p2p_real.cli import main

DATA = Path(__file__).parent.parent.parent / "data"
TINY = ["--model", "tiny-random", "--steps", "3", "--quiet"]


def test_bench_reconstruct_end_to_end(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(DATA / "photos" / name, photos)
    (photos / "captions.json").write_text(json.dumps({"chelsea.jpg": "a tabby cat", "coffee.jpg": "a cup of coffee"}))
    argv = ["bench", "reconstruct", str(photos), "--output", str(tmp_path / "out"), "--metrics", "lpips",
            "--metric-weights", "random", *TINY]
    assert main(argv) == 0
    table = capsys.readouterr().out
    for method in ("null-text", "ddim", "negative-prompt", "direct"):
        assert method in table
    report = json.loads((tmp_path / "out" / "reconstruct.json").read_text())
    assert len(report["rows"]) == 8 and report["summary"]["null-text"]["count"] == 2
    assert all(row["seconds"] > 0 and 0 <= row["lpips"] for row in report["rows"])
    # Direct Inversion's offsets put sampling back on the photo's latent (measured, not assumed)
    assert report["summary"]["direct"]["latent_mse"] < 1e-6 * report["summary"]["ddim"]["latent_mse"]
    assert (tmp_path / "out" / "reconstruct.png").stat().st_size > 10_000


def test_bench_edit_on_the_pie_bench_example(tmp_path, capsys):
    argv = ["bench", "edit", str(DATA / "pie_bench" / "mapping_file.json"), "--output", str(tmp_path),
            "--method", "direct", "--metric-weights", "random", *TINY]
    assert main(argv) == 0
    table = capsys.readouterr().out
    report = json.loads((tmp_path / "edit.json").read_text())
    assert set(report["summary"]) == {"1", "6", "8"} and report["summary"]["6"]["count"] == 2
    for row in report["rows"]:
        assert 0 <= row["clip_whole"] <= 100 and row["structure"] >= 0 and row["psnr_bg"] > 0
    assert len(list((tmp_path / "edits").glob("*.png"))) == 4
    assert "Edit type (entries)" in table and "| direct + P2P |" in table
    assert report["protocol"] == {"name": "pie-bench", "structure_pixels": "pie-bench", "deviations": []}
    assert report["table"]["overall"]["entries"] == 4 and report["table"]["types"]["6"]["psnr_bg_count"] == 2
    assert (tmp_path / "edit.md").read_text().strip() == report["markdown"]
    # Resumable: the inversions are kept and reused.
    assert len(list((tmp_path / "artifacts").glob("*/inversion.json"))) == 4


def test_bench_rejects_unknown_methods_and_metrics(tmp_path, capsys):
    assert main(["bench", "reconstruct", str(DATA / "photos"), "--output", str(tmp_path), "--methods", "magic"]) == 2
    assert "--methods: unknown magic" in capsys.readouterr().err
    assert main(["bench", "reconstruct", str(DATA / "photos"), "--output", str(tmp_path), "--metrics", "fid"]) == 2
    assert "--metrics: unknown fid" in capsys.readouterr().err


def test_bench_edit_reads_our_own_edits_file_too(tmp_path, capsys):
    argv = ["bench", "edit", str(DATA / "photos" / "edits.yaml"), "--output", str(tmp_path), "--method", "ddim",
            "--metrics", "clip", "--metric-weights", "random", *TINY]
    assert main(argv) == 0
    table = capsys.readouterr().out
    report = json.loads((tmp_path / "edit.json").read_text())
    assert len(report["rows"]) == 4 and all(0 <= row["clip_whole"] <= 100 for row in report["rows"])
    assert all(math.isnan(row["psnr_bg"]) for row in report["rows"])  # no masks in an edits file
    assert "NaN left out of the means" in table and "PSNR: 4 (4 in auto)" in table


def test_bench_edit_with_another_method_into_one_folder_inverts_again_and_never_relabels(tmp_path):
    entries = json.loads((DATA / "pie_bench" / "mapping_file.json").read_text())
    mapping = tmp_path / "mapping_file.json"
    mapping.write_text(json.dumps({key: {**entry, "image_path": str(DATA / "pie_bench" / entry["image_path"])}
                                   for key, entry in list(entries.items())[:2]}))

    def bench(method: str, output: Path) -> list[dict]:
        argv = ["bench", "edit", str(mapping), "--output", str(output), "--method", method, "--metrics", "none", *TINY]
        assert main(argv) == 0
        return json.loads((output / "edit.json").read_text())["rows"]

    ddim = bench("ddim", tmp_path / "shared")
    direct = bench("direct", tmp_path / "shared")
    alone = bench("direct", tmp_path / "alone")
    for before, after, fresh in zip(ddim, direct, alone):
        assert after["artifact"] != before["artifact"] and after["artifact"] == fresh["artifact"]
        record = json.loads((tmp_path / "shared" / after["artifact"] / "inversion.json").read_text())
        assert record["method"] == "direct"
        assert after["psnr_bg"] == fresh["psnr_bg"] and after["mse_bg"] == fresh["mse_bg"]
    assert len(list((tmp_path / "shared" / "artifacts").glob("*/inversion.json"))) == 4  # the ddim ones kept too
    assert len(list((tmp_path / "shared" / "edits").glob("*.png"))) == 4
    again = bench("ddim", tmp_path / "shared")  # reused: the same artifacts, the same numbers
    assert [(row["artifact"], row["psnr_bg"]) for row in again] == [(row["artifact"], row["psnr_bg"]) for row in ddim]
