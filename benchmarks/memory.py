"""Memory: the laptop side's peak RSS during ``fab backup`` must stay flat as the database grows.

A region with a 100 MB database and one with BENCH_BIG_DB_MB (1 GB by default); the ratio
of the two peaks should be ~1 (everything streams; nothing is held whole).
"""

from __future__ import annotations

import os

from benchmarks.common import fab, fresh_dir, report, site, timed

BIG_MB = int(os.environ.get("BENCH_BIG_DB_MB", "1024"))


def run() -> list[dict]:
    """Measure peak RSS of fab backup at 100 MB and BIG_MB; return the report."""
    rows, peaks = [], {}
    for mb in (100, BIG_MB):
        with site(f"memory{mb}", regions=1, racks=0, profile="deb-2.9", db_mb=mb) as the_lab:
            r = timed(fab("backup", "--inventory", str(the_lab.inventory), "--backup-dir", str(fresh_dir("mem"))))
            assert r.code == 0, r.output
            peaks[mb] = r.rss_mib
            rows.append({"database": f"{mb} MB", "fab backup seconds": f"{r.seconds:.1f}",
                         "peak RSS MiB": f"{r.rss_mib:.0f}"})
    return [report("memory", "Memory: laptop peak RSS of fab backup", rows,
                   {f"peak RSS at {BIG_MB} MB / at 100 MB": (peaks[BIG_MB] / peaks[100], "≈ 1× (flat)")})]


if __name__ == "__main__":
    run()
