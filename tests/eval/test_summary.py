import math

from p2p_real.eval.summary import format_table, summarize


def test_summary_excludes_nan_and_says_so():
    rows = [{"method": "a", "psnr": 10.0}, {"method": "a", "psnr": float("nan")}, {"method": "a", "psnr": 20.0},
            {"method": "b", "psnr": float("inf")}, {"photo": "broken.jpg", "error": "unreadable"}]
    summary = summarize(rows, "method", ["psnr"])
    assert summary["a"] == {"count": 3, "psnr": 15.0, "psnr_excluded": 1}
    assert summary["b"]["count"] == 1 and math.isnan(summary["b"]["psnr"]) and summary["b"]["psnr_excluded"] == 1
    table = format_table(summary, ["psnr"], "method")
    assert "psnr: 1 in a" in table and "psnr: 1 in b" in table
