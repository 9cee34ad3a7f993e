"""Benchmark 5: gzip vs zstd vs none for the database dump, at 100 MB and BENCH_DB_MB databases.

Each compressor runs on the region host over ``pg_dumpall -c``, output counted, not stored;
then a real ``fab backup --compress X`` gives the end-to-end time. Picks the default.
"""

from __future__ import annotations

from benchmarks.common import DB_MB, RUNS, fab, fresh_dir, median_of, report, secs, site, ssh, timed
from maasops.plan import COMPRESSORS


def run() -> list[dict]:
    """Run benchmark 5; return its report."""
    rows, ratios = [], {}
    for mb in sorted({100, DB_MB}):
        with site(f"compress{mb}", regions=1, racks=0, profile="deb-2.9", db_mb=mb) as the_lab:
            inv = str(the_lab.inventory)
            times = {}
            for name, (tool, _) in COMPRESSORS.items():
                pipe = f"sudo -u postgres pg_dumpall -c{' | ' + tool if tool else ''} | wc -c"
                out = fresh_dir(f"c-{name}") / "bytes"
                dump = median_of(lambda pipe=pipe, out=out: timed(ssh(the_lab, "region1", pipe), stdout_to=out))
                size = int(out.read_text().split()[0])
                full = median_of(lambda name=name, inv=inv: timed(fab("backup", "--inventory", inv, "--backup-dir",
                                                             str(fresh_dir(f"cb-{name}")), "--compress", name)))
                times[name] = full.seconds
                rows.append({"database": f"{mb} MB", "compress": name, "dump seconds (on host)": secs(dump),
                             "dump MiB": f"{size / 1048576:.0f}", "fab backup seconds": secs(full)})
            raw = next(float(r["dump MiB"]) for r in rows if r["compress"] == "none" and r["database"] == f"{mb} MB")
            for r in rows:
                if r["database"] == f"{mb} MB":
                    r["size / uncompressed"] = f"{float(r['dump MiB']) / raw:.2f}"
            ratios[f"{mb} MB: zstd / gzip backup time"] = (times["zstd"] / times["gzip"], "pick the lower")
            ratios[f"{mb} MB: none / gzip backup time"] = (times["none"] / times["gzip"], "pick the lower")
    return [report("compression", f"5. Compression of the dump, median of {RUNS}", rows, ratios)]


if __name__ == "__main__":
    run()
