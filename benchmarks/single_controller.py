"""Benchmarks 1, 4 and 6 on one region (deb 2.9: images in the DB, a multi-GB image cache to exclude).

1. Backup: maasops vs the OpenSSH shell pipeline an admin would write (same gzip -1), wall time.
4. Downtime: seconds the MAAS units are stopped, maasops vs the doc procedure by hand
   (dump to disk, stop, `tar czpf` of the trees *and* the dump, start).
6. Restore: maasops vs the doc's manual steps scripted over ssh (upload, stop, load, move
   aside, untar, dbupgrade, start); maasops both with its default safety dump and without.
"""

from __future__ import annotations

import json

from benchmarks.common import DB_MB, RUNS, fab, fresh_dir, median_of, report, secs, site, ssh, timed
from maasops.lab.profiles import PROFILES

PROFILE = "deb-2.9"
CONFIG_MB = 48  # plus the lab's own files: a config tree of about 50 MB


def prepare(the_lab) -> None:
    """Grow the region's config tree to ~50 MB and its excluded image cache to 4 GiB (sparse)."""
    lay = PROFILES[PROFILE].layout
    cache = lay.cache_excludes[0]
    the_lab.run("region1", f"mkdir -p /var/lib/maas/bench && for i in $(seq {CONFIG_MB}); do "
                           f"head -c 1048576 /dev/urandom > /var/lib/maas/bench/blob$i; done && "
                           f"chown -R maas:maas /var/lib/maas/bench && truncate -s 4G {cache}/cache/bench-squashfs")


def pipeline(the_lab, out) -> str:
    """The admin's hand-written backup: dump, stop the MAAS units, tar, start, each over ssh, gzip -1 like maasops.

    PostgreSQL stays up, as in maasops's default (the dump is live and its data directory is not archived).
    """
    lay = PROFILES[PROFILE].layout
    units = " ".join(lay.units({"region"}))
    trees = " ".join(t.lstrip("/") for t in lay.trees + lay.region_trees)
    excl = " ".join(f"--exclude={t.lstrip('/')}" for t in lay.cache_excludes)
    return " && ".join([
        ssh(the_lab, "region1", "sudo -u postgres pg_dumpall -c | gzip -1") + f" > {out}/dump.sql.gz",
        ssh(the_lab, "region1", f"sudo systemctl stop {units}"),
        ssh(the_lab, "region1", f"sudo tar cpf - -C / {excl} {trees} | gzip -1") + f" > {out}/config.tgz",
        ssh(the_lab, "region1", f"sudo systemctl start {units}"),
    ])


def doc_downtime(the_lab) -> float:
    """The doc procedure: dump to a file, then stop, tar trees + dump (gzip -6), start; seconds stopped."""
    lay = PROFILES[PROFILE].layout
    units = " ".join(lay.units({"region"}))
    trees = " ".join(lay.trees)
    excl = " ".join(f"--exclude={t}" for t in lay.cache_excludes)
    r = timed(ssh(the_lab, "region1", "sudo -u postgres pg_dumpall -c > /var/tmp/dump.sql"))
    assert r.code == 0, r.output
    window = timed(ssh(the_lab, "region1", f"sudo systemctl stop postgresql {units} && "
                                           f"sudo tar cpzf /var/tmp/backup.tgz {excl} {trees} /var/tmp/dump.sql; "
                                           f"sudo systemctl start postgresql {units}"))
    return window.seconds


def manual_restore(the_lab, set_dir) -> str:
    """The doc's restore, scripted over ssh (upload, stop, load, move aside, untar, dbupgrade, start)."""
    lay = PROFILES[PROFILE].layout
    units = " ".join(lay.units({"region"}))
    host_dir = set_dir / "region1"
    moves = " && ".join(f"sudo rm -rf {t}_old && sudo mv {t} {t}_old" for t in lay.trees)
    return " && ".join([
        ssh(the_lab, "region1", "mkdir -p /var/tmp/r && cat > /var/tmp/r/config.tgz") + f" < {host_dir}/config.tar.gz",
        ssh(the_lab, "region1", "cat > /var/tmp/r/dump.sql.gz") + f" < {host_dir}/maasdb.sql.gz",
        ssh(the_lab, "region1", f"sudo systemctl stop {units} && "
                                "gzip -dc /var/tmp/r/dump.sql.gz | sudo -u postgres psql -q -o /dev/null -f - postgres "
                                f"2>/dev/null; {moves} && gzip -dc /var/tmp/r/config.tgz | sudo tar xpf - -C / && "
                                f"sudo {' '.join(lay.dbupgrade)} && sudo systemctl start {units}"),
    ])


def run() -> list[dict]:
    """Run benchmarks 1, 4 and 6; return their reports."""
    with site("single", regions=1, racks=0, profile=PROFILE, db_mb=DB_MB) as the_lab:
        prepare(the_lab)
        inv = str(the_lab.inventory)
        sets = fresh_dir("single-sets")
        ours = median_of(lambda: timed(fab("backup", "--inventory", inv, "--backup-dir", str(sets))))
        theirs = median_of(lambda: timed(pipeline(the_lab, fresh_dir("single-pipeline"))))
        latest = sorted((sets / "lab").iterdir())[-1]
        manifest = json.loads((latest / "region1" / "manifest.json").read_text())
        size = sum(p.stat().st_size for p in (latest / "region1").iterdir())
        b1 = report("single_controller", f"1. Backup of one region ({DB_MB} MB database, ~50 MB config, 4 GiB "
                    f"image cache excluded), median of {RUNS}",
                    [{"what": "maasops: fab backup", "seconds": secs(ours), "peak RSS MiB": f"{ours.rss_mib:.0f}",
                      "bytes on laptop": f"{size / 1048576:.0f} MiB"},
                     {"what": "OpenSSH pipeline (dump | gzip -1; stop; tar | gzip -1; start)",
                      "seconds": secs(theirs), "peak RSS MiB": "-", "bytes on laptop": ""}],
                    {"maasops / pipeline wall time": (ours.seconds / theirs.seconds, "≤ 1.1×")})
        ours_down = manifest["downtime"]["seconds"]
        doc = sorted(doc_downtime(the_lab) for _ in range(RUNS))[RUNS // 2]
        b4 = report("downtime", "4. Downtime window (MAAS units stopped), one region",
                    [{"what": "maasops (dump live, window = config archive only)",
                      "seconds stopped": f"{ours_down:.2f}"},
                     {"what": "doc procedure (stop, tar trees + dump.sql with gzip -6, start)",
                      "seconds stopped": f"{doc:.2f}"}],
                    {"maasops / doc downtime": (ours_down / doc, "window covers only the config copy")})
        with_dump = median_of(lambda: timed(fab("restore", str(latest), "--inventory", inv)))
        without = median_of(lambda: timed(fab("restore", str(latest), "--inventory", inv, "--no-safety-dump")))
        manual = median_of(lambda: timed(manual_restore(the_lab, latest)))
        b6 = report("restore", f"6. Restore of the region ({DB_MB} MB database), median of {RUNS}",
                    [{"what": "maasops: fab restore (saves the current DB first, for rollback)",
                      "seconds": secs(with_dump)},
                     {"what": "maasops: fab restore --no-safety-dump", "seconds": secs(without)},
                     {"what": "doc's manual steps scripted over ssh", "seconds": secs(manual)}],
                    {"maasops --no-safety-dump / manual": (without.seconds / manual.seconds, "≈ 1×"),
                     "maasops (with safety dump) / manual": (with_dump.seconds / manual.seconds, "explained")})
        return [b1, b4, b6]


if __name__ == "__main__":
    run()
