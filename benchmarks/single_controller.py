"""Benchmarks 1, 4 and 6 on one region (deb 2.9: boot images in the database; a 4 GiB image cache to exclude).

1. Backup: ``fab backup`` (its default, --compress auto) vs the OpenSSH baseline doing the same work
   (:mod:`benchmarks.baselines`) with the same compressor, wall time.
4. Downtime: seconds the MAAS units are stopped: maasops (median over benchmark 1's runs, from
   each set's manifest) vs the MAAS doc's procedure with the same compressor (dump to a file;
   stop PostgreSQL and the units; tar the trees and the dump; start).
6. Restore: ``fab restore`` (keeps the replaced database, renamed) and ``--no-rollback-copy`` vs
   the manual steps doing the same work (baselines.restore_host).
"""

from __future__ import annotations

import json
import statistics

from benchmarks import baselines
from benchmarks.common import (
    DB_MB,
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
from maasops.lab.profiles import PROFILES

PROFILE = "deb-2.9"


def prepare(the_lab) -> None:
    """Grow the region's excluded image cache to 4 GiB (sparse): the backup must leave it out."""
    cache = PROFILES[PROFILE].layout.cache_excludes[0]
    the_lab.run("region1", f"truncate -s 4G {cache}/cache/bench-squashfs")


def backups(the_lab, inv: str) -> tuple[Measured, Measured, list, str]:
    """Benchmark 1's runs: maasops and the baseline; every maasops set made (for 4 and 6); the codec used."""
    sets = fresh_dir("single-sets")
    ours = median_of(lambda: timed(fab("backup", "--inventory", inv, "--backup-dir", str(sets))))
    made = sorted(p for p in (sets / "lab").iterdir() if not p.name.endswith(".partial"))
    codec = json.loads((made[-1] / "region1" / "manifest.json").read_text())["dump"]["compression"]
    theirs = median_of(lambda: timed(" && ".join(baselines.backup_host(
        the_lab, "region1", fresh_dir("single-pipeline"), codec, dump=True))))
    return ours, theirs, made, codec


def bench1(ours: Measured, theirs: Measured, made: list, codec: str) -> dict:
    """Report benchmark 1."""
    size = sum(p.stat().st_size for p in (made[-1] / "region1").iterdir())
    return report(
        "single_controller", f"1. Backup of one region ({DB_MB} MB database, 4 GiB image cache excluded), "
                             f"median of {RUNS}",
        [{"what": f"maasops: fab backup (--compress auto: {codec}; {baselines.dump_kind(made[-1])} dump)",
          "seconds": secs(ours),
          "peak RSS MiB": f"{ours.median.rss_mib:.0f}", "bytes on laptop": f"{size / 1048576:.0f} MiB"},
         {"what": f"OpenSSH baseline, same work, {codec}", "seconds": secs(theirs), "peak RSS MiB": "-",
          "bytes on laptop": ""}],
        {"maasops / baseline wall time": Ratio(ours.seconds / theirs.seconds, "≤", 1.1)},
        "ssh commands one after another: roles + pg_dump (plain SQL, as the doc takes it; maasops's dump format is "
        "in its row) | the same compressor; stop the units; tar of the same "
        "trees with the same excludes | the same compressor; start and wait until active and the region answers. "
        "maasops also probes, locks, checks every file's sha256, writes manifests and signs the set, and runs the "
        "dump alongside stop/archive/start.", {"maasops": ours.raw, "baseline": theirs.raw})


def bench4(the_lab, made: list, codec: str) -> dict:
    """Benchmark 4: maasops's windows (one per benchmark 1 run) vs the doc procedure's, each run."""
    windows = [json.loads((s / "region1" / "manifest.json").read_text())["downtime"]["seconds"] for s in made]
    doc = []
    for _ in range(RUNS):
        r = timed(baselines.doc_downtime(the_lab, "region1", codec))
        if r.code:
            raise RuntimeError(r.output[-2000:])
        doc.append(float(r.output.split("window")[-1].split()[0]))
    ours, theirs = statistics.median_low(windows), statistics.median_low(doc)
    return report(
        "downtime", f"4. Downtime window (MAAS units stopped), one region ({DB_MB} MB), median of {RUNS}",
        [{"what": "maasops (dump live, window = config archive only)", "seconds stopped": f"{ours:.2f}"},
         {"what": f"doc procedure (stop PostgreSQL + units, tar trees + dump.sql | {codec}, start)",
          "seconds stopped": f"{theirs:.2f}"}],
        {"maasops / doc downtime": Ratio(ours / theirs, note="the window covers only the config copy")},
        f"the MAAS doc's procedure with maasops's compressor ({codec}): pg_dumpall -c to a file first (not in the "
        "window), then stop PostgreSQL and the units, tar the trees and the dump, start; the window is measured on "
        "the host (no ssh in it). maasops's window is from its first stop to its last start, measured on the laptop, "
        "from each set's manifest.", {"maasops": windows, "doc procedure": [round(d, 3) for d in doc]})


def restores(the_lab, inv: str, latest) -> dict:
    """Benchmark 6: maasops with and without its rollback copy vs the manual steps."""
    plain = baselines.plain_set(inv, "single-plain")
    got = interleaved({
        "kept": lambda: timed(fab("restore", str(latest), "--inventory", inv)),
        "bare": lambda: timed(fab("restore", str(latest), "--inventory", inv, "--no-rollback-copy")),
        "manual": lambda: timed(baselines.restore_host(the_lab, "region1", plain / "region1"))},
        before=settle(the_lab))
    kept, bare, manual = got["kept"], got["bare"], got["manual"]
    kind = baselines.dump_kind(latest)
    return report(
        "restore", f"6. Restore of the region ({DB_MB} MB database), median of {RUNS}",
        [{"what": f"maasops: fab restore (its set's {kind} dump; keeps the replaced database, renamed, for "
                  "rollback)", "seconds": secs(kept)},
         {"what": "maasops: fab restore --no-rollback-copy", "seconds": secs(bare)},
         {"what": "manual steps, same work, over ssh (a plain roles+pg_dump, psql)", "seconds": secs(manual)}],
        {"maasops (rollback copy) / manual": Ratio(kept.seconds / manual.seconds, "≤", 1.15),
         "maasops --no-rollback-copy / manual": Ratio(bare.seconds / manual.seconds,
                                                      note="the gap to the line above: the rollback copy")},
        "the doc's procedure: upload archive and a plain SQL dump of the same database (made by maasops "
        "--dump-format plain, untimed), whatever format maasops's own set has; stop the units; load the dump with "
        "psql and check psql's exit and errors (the harmless ones "
        "maasops accepts); move aside the trees the manifest lists (maasops's); extract; hard-link the excluded "
        "cache back from the aside copy; dbupgrade; start and wait until active and the region answers. maasops "
        "also verifies the set's signature and manifests, probes, locks, checks each upload's sha256 on the host "
        "and records every step for --rollback. The three take turns (round i starts with the i-th); before each run "
        "(untimed) the region's PostgreSQL is vacuumed and checkpointed and the kernel syncs, so each run replaces "
        "a database at rest on disk.",
        {"maasops": kept.raw, "maasops --no-rollback-copy": bare.raw, "manual": manual.raw})


def run() -> list[dict]:
    """Run benchmarks 1, 4 and 6; return their reports."""
    with site("single", regions=1, racks=0, profile=PROFILE, db_mb=DB_MB) as the_lab:
        prepare(the_lab)
        inv = str(the_lab.inventory)
        ours, theirs, made, codec = backups(the_lab, inv)
        return [bench1(ours, theirs, made, codec), bench4(the_lab, made, codec), restores(the_lab, inv, made[-1])]

