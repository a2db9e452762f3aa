"""A benchmark's rows summarised: the mean of each column per group, and that as a table."""
from __future__ import annotations

import math


def summarize(rows: list[dict], group_by: str, columns: list[str]) -> dict[str, dict]:
    """Mean of each column per group, NaN and missing values excluded and counted."""
    groups: dict[str, dict] = {}
    for row in rows:
        if group_by not in row:
            continue
        group = groups.setdefault(str(row[group_by]), {"count": 0, **{c: [] for c in columns}})
        group["count"] += 1
        for column in columns:
            value = row.get(column)
            if value is not None and not math.isnan(value) and not math.isinf(value):
                group[column].append(value)
    summary = {}
    for name, group in groups.items():
        summary[name] = {"count": group["count"]}
        for column in columns:
            values = group[column]
            summary[name][column] = sum(values) / len(values) if values else float("nan")
            summary[name][f"{column}_excluded"] = group["count"] - len(values)
    return summary


def format_table(summary: dict[str, dict], columns: list[str], title: str) -> str:
    lines = [f"{title:<18}" + "".join(f"{column:>12}" for column in ["n", *columns])]
    for name, values in summary.items():
        cells = "".join(f"{values[column]:>12.4g}" for column in columns)
        lines.append(f"{name:<18}{values['count']:>12}{cells}")
    excluded = sorted({f"{c}: {v[c + '_excluded']} in {n}"
                       for n, v in summary.items() for c in columns if v[c + "_excluded"]})
    if excluded:
        lines.append("NaN or missing values excluded from the means (" + "; ".join(excluded) + ")")
    return "\n".join(lines)
