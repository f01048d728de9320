"""Per-day bar charts as plain geometry for a server-rendered SVG (no JavaScript)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any


def day_series(counts: dict[str, int], max_days: int = 120) -> list[tuple[str, int]]:
    """Every day from the first to the last day in ``counts`` (missing days as 0); only the
    last ``max_days`` days when the range is longer."""
    if not counts:
        return []
    days = sorted(counts)
    try:
        first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    except ValueError:
        return [(d, counts[d]) for d in days][-max_days:]
    if (last - first).days >= max_days:
        first = last - timedelta(days=max_days - 1)
    out = []
    d = first
    while d <= last:
        key = d.isoformat()
        out.append((key, int(counts.get(key, 0))))
        d += timedelta(days=1)
    return out


def bars(series: list[tuple[str, int]], width: int = 720, height: int = 140) -> dict[str, Any]:
    """Bars, y-axis maximum and x labels (first, middle, last day) for an SVG of that size."""
    pad_left, pad_bottom, pad_top = 36, 18, 6
    inner_w, inner_h = width - pad_left - 4, height - pad_bottom - pad_top
    n = len(series)
    peak = max((c for _d, c in series), default=0)
    out: list[dict[str, Any]] = []
    if n:
        step = min(inner_w / n, 28.0)  # a few days stay narrow bars, not slabs
        for i, (day, count) in enumerate(series):
            h = 0 if peak == 0 else max(1.0 if count else 0.0, inner_h * count / peak)
            out.append({
                "x": round(pad_left + i * step + step * 0.1, 2), "w": round(max(step * 0.8, 0.8), 2),
                "y": round(pad_top + inner_h - h, 2), "h": round(h, 2), "day": day, "count": count,
            })
    labels = []
    for i in sorted({0, n // 2, n - 1}) if n else []:
        b = out[i]
        labels.append({"x": round(b["x"] + b["w"] / 2, 2), "text": b["day"]})
    return {"width": width, "height": height, "bars": out, "peak": peak, "labels": labels,
            "base": pad_top + inner_h, "left": pad_left, "top": pad_top, "total": sum(c for _d, c in series)}
