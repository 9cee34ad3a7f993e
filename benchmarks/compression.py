"""Benchmark 5: how to compress the dump, at BENCH_SMALL_DB_MB (100) and BENCH_DB_MB, for both kinds of MAAS database.

Kinds: deb 2.9 (boot images in the database as large objects: mostly incompressible bytes,
as MAAS up to 3.4 keeps them) and deb 3.5 (rows only: images are files since 3.5).
On the region host, the dump maasops takes (roles + pg_dump) is piped through each
compressor and level and counted, not stored; then a real ``fab backup --compress X``
gives the end-to-end time of each codec maasops offers. The "at 1 Gbit/s" column is a
model, not a measurement: the slower of compressing on the host and sending the
compressed bytes at 1 Gbit/s (the stream runs both at once).
"""

from __future__ import annotations

import os

from benchmarks import baselines
from benchmarks.common import (
    DB_MB,
    RUNS,
    Measured,
    Ratio,
    compressor,
    fab,
    fresh_dir,
    median_of,
    report,
    secs,
    site,
    ssh,
    timed,
)

KINDS = {"deb-2.9": "images in the DB (up to 3.4)", "deb-3.5": "rows only (3.5+)"}
LEVELS = {"none": "", "gzip -1 (maasops gzip)": compressor("gzip"), "gzip -6": "gzip -6", "zstd -1": "zstd -q -1 -T0",
          "zstd -3 (maasops zstd, auto)": compressor("zstd"), "zstd -6": "zstd -q -6 -T0", "zstd -9": "zstd -q -9 -T0"}
GBIT = 1e9 / 8  # bytes a second
SMALL_MB = int(os.environ.get("BENCH_SMALL_DB_MB", "100"))


def sweep(the_lab, label: str) -> tuple[list[dict], dict[str, list[float]], dict[str, float]]:
    """Each compressor over the dump on the host: rows, raw times, modelled seconds at 1 Gbit/s."""
    rows, raw, model = [], {}, {}
    plain = 0
    for name, command in LEVELS.items():
        out = fresh_dir("compress") / "bytes"
        pipe = baselines.DUMP + (f" | {command}" if command else "") + " | wc -c"
        m = median_of(lambda pipe=pipe, out=out: timed(ssh(the_lab, "region1", pipe), stdout_to=out))
        size = int(out.read_text().split()[0])
        plain = plain or size
        model[name] = max(m.seconds, size / GBIT)
        raw[f"{label} {name}"] = m.raw
        rows.append({"database": label, "compressor": name, "on host s": secs(m), "MiB": f"{size / 1048576:.1f}",
                     "size / raw": f"{size / plain:.3f}", "at 1 Gbit/s s (model)": f"{model[name]:.2f}"})
    return rows, raw, model


def end_to_end(the_lab) -> dict[str, Measured]:
    """fab backup with each codec maasops offers."""
    inv = str(the_lab.inventory)
    return {codec: median_of(lambda codec=codec: timed(fab("backup", "--inventory", inv, "--backup-dir",
                                                           str(fresh_dir(f"cb-{codec}")), "--compress", codec)))
            for codec in ("gzip", "zstd", "none")}


def run() -> list[dict]:
    """Run benchmark 5; return its report."""
    rows, raw, ratios, findings, e2e_rows = [], {}, {}, [], []
    for profile, kind in KINDS.items():
        for mb in sorted({SMALL_MB, DB_MB}):
            label = f"{mb} MB, {kind}"
            with site(f"compress{mb}", regions=1, racks=0, profile=profile, db_mb=mb) as the_lab:
                got_rows, got_raw, model = sweep(the_lab, label)
                full = end_to_end(the_lab)
            rows += got_rows
            raw.update(got_raw)
            raw.update({f"{label} fab backup --compress {c}": m.raw for c, m in full.items()})
            e2e_rows.append({"database": label, **{f"fab backup --compress {c} s": secs(m) for c, m in full.items()}})
            ratios[f"{label}: fab backup zstd / gzip"] = Ratio(full["zstd"].seconds / full["gzip"].seconds,
                                                               note="auto picks zstd where the host has it")
            fastest = min(model, key=model.get)
            findings.append(f"{label}: the lowest modelled time at 1 Gbit/s is {fastest} ({model[fastest]:.2f} s; "
                            f"maasops's zstd -3: {model['zstd -3 (maasops zstd, auto)']:.2f} s, gzip -1: "
                            f"{model['gzip -1 (maasops gzip)']:.2f} s)")
    return [report("compression", f"5. Compression of the dump (roles + pg_dump), median of {RUNS}", rows + e2e_rows,
                   ratios, "not a baseline: each compressor and level over the same dump, on the region host; "
                   "then maasops end to end with each codec it offers.", raw, findings)]
