"""Benchmark 2 and the fleet half of the scaling curve: 1 region + N racks (deb 3.5).

Backup: maasops in parallel (its default) vs the same maasops with ``--parallel 1`` vs the
shell loop an admin would write (:func:`benchmarks.baselines.backup_fleet`: one host after
another, the same work, the same compressor). Restore: maasops vs the shell loop doing the
same work (:func:`benchmarks.baselines.restore_fleet`, regions first).
1+5 is benchmark 2 (BENCH_RUNS runs); 1+10 and 1+20 (BENCH_SCALE_RACKS) are measured
BENCH_SCALE_RUNS times for the curve.
"""

from __future__ import annotations

import json
import os

from benchmarks import baselines
from benchmarks.common import (
    RUNS,
    Measured,
    Ratio,
    fab,
    fresh_dir,
    interleaved,
    median_of,
    report,
    secs,
    settle,
    site,
    timed,
)

PROFILE = "deb-3.5"
FLEET_DB_MB = int(os.environ.get("BENCH_FLEET_DB_MB", "64"))
RACKS = int(os.environ.get("BENCH_FLEET_RACKS", "5"))
SCALE_RACKS = [int(n) for n in os.environ.get("BENCH_SCALE_RACKS", "5,10,20").split(",")]
SCALE_RUNS = int(os.environ.get("BENCH_SCALE_RUNS", "1"))


def measure(racks: int, runs: int, sequential: bool) -> dict[str, Measured]:
    """Backups and restores of a 1 + ``racks`` site by maasops and by the shell loops."""
    got: dict[str, Measured] = {}
    with site(f"fleet{racks}", regions=1, racks=racks, profile=PROFILE, db_mb=FLEET_DB_MB) as the_lab:
        inv = str(the_lab.inventory)
        sets = fresh_dir(f"fleet{racks}-sets")
        got["maasops backup"] = median_of(lambda: timed(fab("backup", "--inventory", inv, "--backup-dir",
                                                             str(sets))), runs)
        if sequential:
            got["maasops backup --parallel 1"] = median_of(lambda: timed(fab(
                "backup", "--inventory", inv, "--backup-dir", str(fresh_dir("fleet-seq")), "--parallel", "1")), runs)
        latest = sorted((sets / "lab").iterdir())[-1]
        codec = json.loads((latest / "region1" / "manifest.json").read_text())["dump"]["compression"]
        got["shell loop backup"] = median_of(lambda: timed(baselines.backup_fleet(the_lab, fresh_dir("fleet-loop"),
                                                                                 codec)), runs)
        got |= interleaved({
            "maasops restore": lambda: timed(fab("restore", str(latest), "--inventory", inv)),
            "shell loop restore": lambda: timed(baselines.restore_fleet(the_lab, latest))}, runs, settle(the_lab))
    return got


def bench2(got: dict[str, Measured]) -> dict:
    """Report benchmark 2 from the 1+RACKS measurements."""
    par, seq, loop = got["maasops backup"], got["maasops backup --parallel 1"], got["shell loop backup"]
    rest, rloop = got["maasops restore"], got["shell loop restore"]
    return report(
        "fleet", f"2. Fleet, 1 region ({FLEET_DB_MB} MB DB) + {RACKS} racks, median of {RUNS}",
        [{"what": "maasops backup (parallel, default)", "seconds": secs(par)},
         {"what": "maasops backup --parallel 1", "seconds": secs(seq)},
         {"what": "shell loop backup, one host after another", "seconds": secs(loop)},
         {"what": "maasops restore", "seconds": secs(rest)},
         {"what": "shell loop restore, one host after another", "seconds": secs(rloop)}],
        {"maasops backup / shell loop": Ratio(par.seconds / loop.seconds, "≤", 0.5),
         "maasops backup / maasops --parallel 1": Ratio(par.seconds / seq.seconds, "<", 1.0),
         "maasops restore / shell loop": Ratio(rest.seconds / rloop.seconds, note="restore keeps a rollback copy")},
        "benchmarks/baselines.py: each host in turn over ssh, the same work and compressor as maasops (backup: "
        "dump on the region, stop, tar, start and wait; restore: upload, stop, load and check, move aside, extract, "
        "dbupgrade on the region, start and wait, regions first). The two restores take turns; before each, the "
        "region's PostgreSQL is vacuumed and checkpointed and the kernel syncs (untimed).",
        {k: v.raw for k, v in got.items()})


def scaling(points: dict[int, dict[str, Measured]]) -> dict:
    """Report the fleet scaling curve."""
    rows = [{"racks": str(n), **{k: secs(v) for k, v in got.items() if "--parallel 1" not in k}}
            for n, got in sorted(points.items())]
    biggest = max(points)
    got = points[biggest]
    return report(
        "fleet_scaling", f"Scaling: fleet backup and restore, 1 region ({FLEET_DB_MB} MB DB) + N racks",
        rows, {f"1+{biggest}: maasops backup / shell loop": Ratio(got["maasops backup"].seconds /
                                                                   got["shell loop backup"].seconds),
               f"1+{biggest}: maasops restore / shell loop": Ratio(got["maasops restore"].seconds /
                                                                    got["shell loop restore"].seconds)},
        "as benchmark 2; 1+RACKS comes from benchmark 2's runs, the others from BENCH_SCALE_RUNS run(s) each.",
        {f"1+{n} {k}": v.raw for n, got in points.items() for k, v in got.items()})


def run() -> list[dict]:
    """Run benchmark 2 and the fleet scaling curve; return their reports."""
    points = {RACKS: measure(RACKS, RUNS, sequential=True)}
    for n in SCALE_RACKS:
        if n not in points:
            points[n] = measure(n, SCALE_RUNS, sequential=False)
    return [bench2(points[RACKS]), scaling(points)]
