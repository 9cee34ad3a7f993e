"""Evaluation (issue 15): PostgreSQL's directory format with parallel jobs vs the plain dump.

On one region at BENCH_BIG_DB_MB, for both kinds of database (images in it, up to 3.4;
rows only, 3.5+), each written to the host's disk and timed on the host:

- plain: ``pg_dump --clean --create`` | zstd (what maasops streams below 256 MiB), loaded with ``psql``;
- ``pg_dump -Fd -j N -Z 0``, then tar | zstd (what maasops takes from 256 MiB, maasops.parts.database), restored by
  extracting the tar and ``pg_restore -j N --create``;
- ``pg_dump -Fd -j N -Z 1`` (each job compresses with gzip), then a plain tar, restored likewise.

N is BENCH_JOBS (default: this machine's cores). The MAAS units are stopped and maasdb renamed
aside while the loads run (each load creates maasdb, which is dropped after it).
"""

from __future__ import annotations

import os
import shlex

from benchmarks.common import RUNS, Measured, Ratio, compressor, median_of, report, secs, site, ssh, timed
from maasops.compression import codec
from maasops.parts import database

BIG_MB = int(os.environ.get("BENCH_BIG_DB_MB", "1024"))
JOBS = int(os.environ.get("BENCH_JOBS", str(os.cpu_count() or 2)))
KINDS = {"deb-2.9": "images in the DB (up to 3.4)", "deb-3.5": "rows only (3.5+)"}
PG = "runuser -u postgres --"
T = "/var/tmp/pdump"
ZSTD, UNZSTD = compressor("zstd"), str(codec("zstd").decompress)
MAASOPS = f"-Fd -j {JOBS} -Z 0, tar, zstd"  # the way maasops takes (maasops.parts.database), the set's codec being zstd
DUMPS = {
    "plain, zstd": f"{PG} pg_dump --clean --create --if-exists maasdb | {ZSTD} > {T}/plain.sql.zst",
    MAASOPS: f"{PG} pg_dump -Fd -j {JOBS} -Z 0 -f {T}/d0 maasdb && tar cf - -C {T} d0 | {ZSTD} > {T}/d0.tar.zst",
    f"-Fd -j {JOBS} -Z 1, tar": f"{PG} pg_dump -Fd -j {JOBS} -Z 1 -f {T}/d1 maasdb && tar cf {T}/d1.tar -C {T} d1",
}
CLEAN = f"rm -rf {T}/d0 {T}/d1 {T}/r && mkdir -p {T}/r && chown postgres {T} {T}/r"
LOADS = {
    "plain, zstd": f"{UNZSTD} {T}/plain.sql.zst | {PG} psql -X -q -o /dev/null -v ON_ERROR_STOP=1 -f - postgres",
    MAASOPS: f"{UNZSTD} {T}/d0.tar.zst | {PG} tar xf - -C {T}/r && {PG} pg_restore -j {JOBS} --create -d postgres "
             f"{T}/r/d0",
    f"-Fd -j {JOBS} -Z 1, tar": f"{PG} tar xf {T}/d1.tar -C {T}/r && {PG} pg_restore -j {JOBS} --create -d postgres "
                                f"{T}/r/d1",
}
CLEAN_LOAD = f"rm -rf {T}/r && mkdir {T}/r && chown postgres {T}/r"
DROP = f"{PG} psql -X -q -c 'DROP DATABASE IF EXISTS maasdb' postgres"


def as_root(the_lab, command: str) -> str:
    """An ssh command line running ``command`` as root on region1 (pipefail on)."""
    return ssh(the_lab, "region1", f"sudo bash -o pipefail -c {shlex.quote(command)}")


def measure(the_lab) -> dict[str, Measured]:
    """Dump and load times of each way, on the host."""
    units = "maas-regiond maas-proxy maas-syslog"
    got = {}
    the_lab.run("region1", f"mkdir -p {T} && chown postgres {T}")
    for name, cmd in DUMPS.items():
        got[f"dump: {name}"] = median_of(lambda cmd=cmd: timed(as_root(the_lab, cmd)),
                                         before=lambda: the_lab.run("region1", CLEAN))
    the_lab.run("region1", f"systemctl stop {units} && runuser -u postgres -- psql -X -q -c "
                           "'ALTER DATABASE maasdb RENAME TO bench_source' postgres")
    try:
        for name, cmd in LOADS.items():
            got[f"load: {name}"] = median_of(lambda cmd=cmd: timed(as_root(the_lab, cmd)),
                                             before=lambda: the_lab.run("region1", f"{DROP} && {CLEAN_LOAD}"))
    finally:
        the_lab.run("region1", DROP + " && runuser -u "
                    "postgres -- psql -X -q -c 'ALTER DATABASE bench_source RENAME TO maasdb' postgres && "
                    f"systemctl start {units} && rm -rf {T}")
    return got


def run() -> list[dict]:
    """Run the evaluation; return its report."""
    rows, raw, ratios, findings = [], {}, {}, []
    wins: dict[str, list[bool]] = {}
    for profile, kind in KINDS.items():
        label = f"{BIG_MB} MB, {kind}"
        with site(f"pdump-{profile}", regions=1, racks=0, profile=profile, db_mb=BIG_MB) as the_lab:
            got = measure(the_lab)
        raw.update({f"{label} {k}": v.raw for k, v in got.items()})
        plain = got["dump: plain, zstd"].seconds + got["load: plain, zstd"].seconds
        for name in DUMPS:
            total = got[f"dump: {name}"].seconds + got[f"load: {name}"].seconds
            rows.append({"database": label, "format": name, "dump s": secs(got[f"dump: {name}"]),
                         "load s": secs(got[f"load: {name}"]), "dump + load s": f"{total:.2f}"})
            if name != "plain, zstd":
                ratios[f"{label}: {name} / plain (dump + load)"] = Ratio(total / plain, "<", 0.9)
                wins.setdefault(name, []).append(total < 0.9 * plain)
    for name, got in wins.items():
        findings.append(f"{name}: saves 10% or more of dump + load on {sum(got)} of {len(got)} databases here")
    findings.append(f"maasops takes {MAASOPS} from {database.DIRECTORY_FROM >> 20} MiB of database (--dump-format "
                    "auto); its ratios to the plain dump are the ones above")
    return [report("parallel_dump", f"Evaluation: pg_dump -Fd -j {JOBS} vs the plain dump, median of {RUNS}",
                   rows, ratios,
                   f"the plain dump (maasops's below {database.DIRECTORY_FROM >> 20} MiB, and the doc's); "
                   "all ways run on the host, to its disk.",
                   raw, findings)]
