"""`bench edit`'s rows as the PIE-Bench papers lay them out (PnPInversion, Ju et al. 2024, Table 1):
the mean of each column over all entries and per edit type, NaN left out and counted, in the
papers' units (structure distance x10^3, LPIPS x10^3, MSE x10^4, SSIM x10^2), and as markdown.

A NaN is left out of a mean, as the papers' means over evaluate.py's CSV ("nan" cells) leave it;
an infinite PSNR (an 8-bit-identical background) is kept, so that a mean shows it as the
reference's would. A row with an error (the edit failed) is counted as failed and has no values.
"""
from __future__ import annotations

import math

# (row key, header, factor to the papers' unit, better)
COLUMNS = (
    ("structure", "Structure distance ×10³", 1e3, "↓"),
    ("psnr_bg", "PSNR", 1.0, "↑"),
    ("lpips_bg", "LPIPS ×10³", 1e3, "↓"),
    ("mse_bg", "MSE ×10⁴", 1e4, "↓"),
    ("ssim_bg", "SSIM ×10²", 1e2, "↑"),
    ("clip_whole", "CLIP whole", 1.0, "↑"),
    ("clip_edited", "CLIP edited", 1.0, "↑"),
)
# PIE-Bench's editing_type_id (the benchmark's README)
EDIT_TYPES = {"0": "random", "1": "change object", "2": "add object", "3": "delete object", "4": "change content",
              "5": "change pose", "6": "change color", "7": "change material", "8": "change background",
              "9": "change style"}


def paper_table(rows: list[dict], group_by: str = "type") -> dict:
    """{"units": {column: factor}, "overall": cell, "types": {type: cell}}; a cell holds "entries"
    (rows with scores), "failed", and per column its mean in the papers' unit, "<column>_count"
    (values in the mean) and "<column>_excluded" (NaN or missing, left out)."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(str(row.get(group_by, "")), []).append(row)
    order = sorted(groups, key=lambda name: (not name.isdigit(), int(name) if name.isdigit() else 0, name))
    return {"units": {key: factor for key, _, factor, _ in COLUMNS}, "overall": table_cell(rows),
            "types": {name: table_cell(groups[name]) for name in order}}


def table_cell(rows: list[dict]) -> dict:
    scored = [row for row in rows if "error" not in row]
    cell = {"entries": len(scored), "failed": len(rows) - len(scored)}
    for key, _, factor, _ in COLUMNS:
        values = [float(row[key]) for row in scored if row.get(key) is not None and not math.isnan(row[key])]
        cell[key] = factor * math.fsum(values) / len(values) if values else float("nan")
        if any(math.isinf(value) for value in values):  # fsum refuses mixed infinities; the mean is the same
            cell[key] = factor * sum(values) / len(values)
        cell[f"{key}_count"] = len(values)
        cell[f"{key}_excluded"] = len(scored) - len(values)
    return cell


def paper_markdown(table: dict, method: str) -> str:
    """The overall row (and a row of counts) and the per-type table, as markdown to paste."""
    overall, types = table["overall"], table["types"]
    lines = [*header("Method"), row(method, [number(overall[key]) for key, *_ in COLUMNS]),
             row("entries counted", [str(overall[f"{key}_count"]) for key, *_ in COLUMNS]),
             "", *header("Edit type (entries)")]
    for name, cell in types.items():
        label = f"{name} {EDIT_TYPES[name]}" if name in EDIT_TYPES else name or "(none)"
        lines.append(row(f"{label} ({cell['entries']})", [number(cell[key]) for key, *_ in COLUMNS]))
    failed = f", {overall['failed']} failed (left out)" if overall["failed"] else ""
    notes = [f"{overall['entries']} entries scored{failed}"]
    excluded = []
    for key, name, _, _ in COLUMNS:
        if overall[f"{key}_excluded"]:
            where = ", ".join(f"{cell[f'{key}_excluded']} in {group}" for group, cell in types.items()
                              if cell[f"{key}_excluded"])
            excluded.append(f"{name}: {overall[key + '_excluded']} ({where})")
    if excluded:
        notes.append("NaN left out of the means (no mask, a mask over the whole image, or no network): "
                     + "; ".join(excluded))
    return "\n".join(lines + ["", ". ".join(notes) + "."])


def header(first: str) -> list[str]:
    return [row(first, [f"{name} {better}" for _, name, _, better in COLUMNS]), "|:--|" + "--:|" * len(COLUMNS)]


def row(first: str, cells: list[str]) -> str:
    return f"| {first} | " + " | ".join(cells) + " |"


def number(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.2f}"
