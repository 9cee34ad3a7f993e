"""The scaling curve as a PNG: time against size, maasops beside its baselines (matplotlib, a bench extra)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: write files only
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

STYLES = {"maasops": "-o", "shell loop": "--s", "baseline": "--s", "manual": "--s"}


def _style(series: str) -> str:
    return next(v for k, v in STYLES.items() if series.startswith(k))


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _panel(ax, rows: list[dict], x_key: str, x_of, xlabel: str, title: str) -> None:
    xs = [x_of(r[x_key]) for r in rows]
    for col in rows[0]:
        if col == x_key or "RSS" in col or not _number(rows[0][col]):  # seconds only (not the dump's kind)
            continue
        ax.plot(xs, [float(r[col]) for r in rows], _style(col), label=col.removesuffix(" s"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("seconds (wall)")
    ax.set_title(title)
    ax.set_xticks(xs)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def scaling_png(fleet: dict, region: dict, path: Path, caption: str) -> None:
    """Draw the fleet and single-region curves from their reports' rows into ``path``."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    _panel(left, fleet["rows"], "racks", lambda n: 1 + int(n), "hosts (1 region + N racks)", fleet["title"])
    _panel(right, region["rows"], "database MB", int, "database (MB of raw dump)", region["title"])
    right.set_xscale("log")
    right.set_xticks([int(r["database MB"]) for r in region["rows"]],
                     [r["database MB"] for r in region["rows"]])
    right.minorticks_off()
    for ax in (left, right):
        ax.title.set_fontsize(9)
    fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
