import math

import pytest

from p2p_real.eval.pie_bench_table import COLUMNS, paper_markdown, paper_table

NAN = float("nan")


def row(kind: str, **values) -> dict:
    return {"type": kind, **dict.fromkeys((key for key, *_ in COLUMNS), 0.5), **values}


def test_means_leave_nan_out_count_it_and_use_the_papers_units():
    rows = [row("1", structure=0.010, mse_bg=0.002, psnr_bg=20.0), row("1", structure=0.020, mse_bg=NAN, psnr_bg=NAN),
            row("8", structure=0.030, mse_bg=0.004, psnr_bg=30.0), {"type": "8", "key": "x", "error": "failed"}]
    table = paper_table(rows)
    overall = table["overall"]
    assert overall["structure"] == pytest.approx(20.0)  # x10^3 of 0.020
    assert overall["mse_bg"] == pytest.approx(30.0)  # x10^4 of the mean of 0.002 and 0.004; the NaN is left out
    assert overall["psnr_bg"] == pytest.approx(25.0) and overall["ssim_bg"] == pytest.approx(50.0)
    assert (overall["entries"], overall["failed"], overall["mse_bg_count"], overall["mse_bg_excluded"]) == (3, 1, 2, 1)
    assert list(table["types"]) == ["1", "8"] and table["types"]["1"]["mse_bg"] == pytest.approx(20.0)
    assert math.isnan(paper_table([row("1", clip_edited=NAN)])["overall"]["clip_edited"])
    markdown = paper_markdown(table, "null-text + P2P")
    assert "| null-text + P2P | 20.00 | 25.00 | 500.00 | 30.00 | 50.00 | 0.50 | 0.50 |" in markdown
    assert "| entries counted | 3 | 2 | 3 | 2 | 3 | 3 | 3 |" in markdown
    assert "| 1 change object (2) |" in markdown and "1 failed (left out)" in markdown
    assert "MSE ×10⁴: 1 (1 in 1)" in markdown


def test_an_infinite_psnr_is_kept_as_the_reference_keeps_it():
    assert paper_table([row("1", psnr_bg=math.inf), row("1", psnr_bg=20.0)])["overall"]["psnr_bg"] == math.inf
