"""The single-region half of the scaling curve, and the laptop's memory as the database grows.

One region (deb 2.9, boot images in the database) at each of BENCH_SCALE_MB (100, 1024 and
4096 MB of raw dump): ``fab backup`` and ``fab restore`` vs the OpenSSH baselines doing the same
work (:mod:`benchmarks.baselines`), BENCH_SCALE_RUNS run(s) each. The peak RSS of ``fab backup``
at each size is the memory check: everything streams, so it should stay flat.
"""

from __future__ import annotations

import json
import os

from benchmarks import baselines
from benchmarks.common import Measured, Ratio, fab, fresh_dir, interleaved, median_of, report, secs, settle, site, timed

PROFILE = "deb-2.9"
SIZES = [int(n) for n in os.environ.get("BENCH_SCALE_MB", "100,1024,4096").split(",")]
RUNS = int(os.environ.get("BENCH_SCALE_RUNS", "1"))


def measure(mb: int) -> dict[str, Measured]:
    """Backups and restores of a region with an ``mb`` MB database, by maasops and by the baselines; the kind
    of dump maasops took."""
    with site(f"scale{mb}", regions=1, racks=0, profile=PROFILE, db_mb=mb) as the_lab:
        inv = str(the_lab.inventory)
        sets = fresh_dir(f"scale{mb}-sets")
        got = {"maasops backup": median_of(lambda: timed(fab("backup", "--inventory", inv, "--backup-dir",
                                                             str(sets))), RUNS)}
        latest = sorted((sets / "lab").iterdir())[-1]
        codec = json.loads((latest / "region1" / "manifest.json").read_text())["dump"]["compression"]
        got["baseline backup"] = median_of(lambda: timed(" && ".join(baselines.backup_host(
            the_lab, "region1", fresh_dir(f"scale{mb}-pipe"), codec, dump=True))), RUNS)
        plain = baselines.plain_set(inv, f"scale{mb}-plain")
        got |= interleaved({
            "maasops restore": lambda: timed(fab("restore", str(latest), "--inventory", inv)),
            "manual restore": lambda: timed(baselines.restore_host(the_lab, "region1", plain / "region1"))},
            RUNS, settle(the_lab))
        return got, baselines.dump_kind(latest)


def run() -> list[dict]:
    """Run the single-region curve; return its report and the memory report."""
    measured = {mb: measure(mb) for mb in SIZES}
    points = {mb: got for mb, (got, _) in measured.items()}
    rows = [{"database MB": str(mb), "maasops dump": kind, **{f"{k} s": secs(v) for k, v in got.items()},
             "fab backup peak RSS MiB": f"{got['maasops backup'].median.rss_mib:.0f}"}
            for mb, (got, kind) in measured.items()]
    small, big = min(points), max(points)
    raw = {f"{mb} MB {k}": v.raw for mb, got in points.items() for k, v in got.items()}
    curve = report(
        "region_scaling", f"Scaling: one region, backup and restore by database size, {RUNS} run(s) each", rows,
        {f"{big} MB: maasops backup / baseline": Ratio(points[big]["maasops backup"].seconds /
                                                        points[big]["baseline backup"].seconds, "≤", 1.1),
         f"{big} MB: maasops restore / manual": Ratio(points[big]["maasops restore"].seconds /
                                                       points[big]["manual restore"].seconds, "≤", 1.15)},
        "as benchmarks 1 and 6 (benchmarks/baselines.py), at each size: the manual restore loads a plain SQL dump "
        "of the same database with psql; maasops restores its own set, whose dump format --dump-format auto chose "
        "(column 'maasops dump').", raw)
    peaks = {mb: got["maasops backup"].median.rss_mib for mb, got in points.items()}
    memory = report(
        "memory", "Memory: the laptop's peak RSS of fab backup by database size",
        [{"database MB": str(mb), "peak RSS MiB": f"{p:.0f}"} for mb, p in peaks.items()],
        {f"peak RSS at {big} MB / at {small} MB": Ratio(peaks[big] / peaks[small], "≤", 1.25)},
        "not a baseline: the same fab backup runs as the scaling curve's.",
        {f"{mb} MB peak RSS MiB": [round(r.rss_mib, 1) for r in got["maasops backup"].runs]
         for mb, got in points.items()})
    return [curve, memory]
