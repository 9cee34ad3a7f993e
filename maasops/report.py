"""Tables for people: every command ends with one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tabulate import tabulate

from maasops.hosttext import clean


def table(rows: Iterable[Mapping[str, object]]) -> str:
    """A plain-text table whose columns are the rows' keys, in order; what a host said shows its control
    characters as escapes (:func:`maasops.hosttext.clean`)."""
    rows = list(rows)
    if not rows:
        return "(nothing)"
    return tabulate([["" if v is None else clean(str(v)) for v in r.values()] for r in rows],
                    headers=list(rows[0].keys()), tablefmt="simple",
                    disable_numparse=True)


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
