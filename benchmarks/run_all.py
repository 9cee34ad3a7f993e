"""``make bench``: every benchmark in one invocation, then RESULTS.md, the raw numbers and the scaling plot.

    python -m benchmarks.run_all            # all of them: writes benchmarks/RESULTS.md,
                                            # benchmarks/results/<date>-<commit>.json, benchmarks/scaling.png
    python -m benchmarks.run_all NAME ...   # only these (development): results go under .bench/, nothing
                                            # in benchmarks/ is rewritten

NAMEs: single_controller (benchmarks 1, 4, 6), fleet (2 and the fleet curve), transfer (3),
compression (5), parallel_dump (the -Fd -j evaluation), scaling (the region curve and memory), repo_dedup
(the restic repository: a second backup's bytes and time, a restore from it).
Sizes come from the environment (see SIZES); RESULTS.md records the values used.
"""

from __future__ import annotations

import compileall
import os
import platform
import subprocess
import sys
import time

from benchmarks import compression, fleet, parallel_dump, repo_dedup, scaling, single_controller, transfer
from benchmarks.common import ROOT, WORK, save_json

MODULES = {"single_controller": single_controller, "fleet": fleet, "transfer": transfer, "compression": compression,
           "parallel_dump": parallel_dump, "scaling": scaling, "repo_dedup": repo_dedup}
ORDER = ("single_controller", "fleet", "transfer", "downtime", "compression", "restore", "fleet_scaling",
         "region_scaling", "memory", "parallel_dump", "repo_dedup")
SIZES = {"BENCH_RUNS": "3", "BENCH_DB_MB": "500", "BENCH_SMALL_DB_MB": "100", "BENCH_FLEET_DB_MB": "64",
         "BENCH_FLEET_RACKS": "5",
         "BENCH_SCALE_RACKS": "5,10,20", "BENCH_SCALE_MB": "100,1024,4096", "BENCH_SCALE_RUNS": "1",
         "BENCH_TRANSFER_MB": "1024", "BENCH_BIG_DB_MB": "1024", "BENCH_JOBS": str(os.cpu_count() or 2),
         "BENCH_REPO_IMAGES_MB": "2048", "BENCH_REPO_DB_MB": "300"}
OUTPUTS = ("benchmarks/RESULTS.md", "benchmarks/results/", "benchmarks/scaling.png")
PLOT = "scaling.png"


def git(*args: str) -> str:
    """Output of a git command in the repository."""
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def machine() -> str:
    """One line on the machine the figures come from."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.node()}: {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}, "
            f"Python {platform.python_version()}")


def _tables(rows: list[dict]) -> list[str]:
    """Markdown tables: consecutive rows with the same columns make one table."""
    out, head = [], None
    for row in rows:
        if list(row) != head:
            head = list(row)
            out.append("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
        out.append("| " + " | ".join(str(row.get(h, "")).replace("|", "\\|") for h in head) + " |\n")
    return out


def section(r: dict) -> list[str]:
    """One benchmark's part of RESULTS.md."""
    out = [f"\n## {r['title']}\n", f"\n**Baseline:** {r['baseline']}\n", *_tables(r["rows"]), "\n"]
    out += [f"- **{k}: {v['value']:.2f}×** ({v['verdict']})\n" for k, v in r["ratios"].items()]
    out += [f"- {line}\n" for line in r["findings"]]
    return out


def summary(reports: dict[str, dict]) -> list[str]:
    """What the numbers show: every ratio with a target, met or not, and every finding, in one place."""
    out = ["\n## What these numbers show\n\n", "Computed from this run's figures only (nothing here is written by "
           "hand).\n\n", "| benchmark | ratio | value | target | met |\n|---|---|---|---|---|\n"]
    for name in ORDER:
        for k, v in reports.get(name, {}).get("ratios", {}).items():
            if v["met"] is not None:
                label = k.replace("|", "\\|")
                met = "yes" if v["met"] else "NO"
                out.append(f"| {name} | {label} | {v['value']:.2f}× | {v['target']} | {met} |\n")
    out.append("\n")
    out += [f"- {name}: {line}\n" for name in ORDER for line in reports.get(name, {}).get("findings", [])]
    return out


def markdown(reports: dict[str, dict], meta: dict) -> str:
    """RESULTS.md from the reports of one invocation."""
    sizes = ", ".join(f"{k}={v}" for k, v in meta["sizes"].items())
    out = [f"# Benchmark results\n\nWritten by `make bench` (one invocation, {meta['minutes']:.0f} min) on "
           f"{meta['date']} at commit {meta['commit']}{' (with uncommitted changes)' if meta['dirty'] else ''}. "
           f"Every run's time is in [{meta['raw']}]({meta['raw']}).\n\n- machine: {meta['machine']}\n"
           f"- sizes: {sizes}; each figure is the median run\n"
           "- every host is a lab host on this same machine (its own sshd, sudo, PostgreSQL), reached through the "
           "lab's bastion; the baselines use OpenSSH with the same ssh_config. The lab's database is seeded with "
           "MAAS-like content (maasops/lab/seed.py): machines, events, scripts' output, DNS and DHCP data, and up to "
           "MAAS 3.4 boot images as large objects; MB means MiB of raw dump. This machine is shared and noisy: read "
           "the ratios, not the seconds.\n", f"\n![scaling]({PLOT})\n"]
    out += summary(reports)
    for name in ORDER:
        if name in reports:
            out += section(reports[name])
    return "".join(out)


def run(names: list[str]) -> tuple[dict[str, dict], float]:
    """Run the named benchmark modules in turn; their reports by name, and the minutes it took."""
    started = time.monotonic()
    reports = {}
    for name in names:
        for r in MODULES[name].run():
            reports[r["name"]] = r
        save_json(WORK / "in-progress.json", reports)  # what a run cut short had measured
    return reports, (time.monotonic() - started) / 60


def main(only: list[str]) -> None:
    """Run every benchmark (or those named) and write the results."""
    unknown = [n for n in only if n not in MODULES]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    # Byte-compiled, as pip leaves an installed maasops: with PYTHONDONTWRITEBYTECODE set (as on this machine) an
    # editable install would compile every module afresh in each fab run the benchmarks time.
    compileall.compile_dir(ROOT / "maasops", quiet=1)
    compileall.compile_file(ROOT / "fabfile.py", quiet=1)
    commit = git("rev-parse", "--short", "HEAD")
    dirty = bool([ln for ln in git("status", "--porcelain").splitlines() if not ln[3:].startswith(OUTPUTS)])
    reports, minutes = run(only or list(MODULES))
    date = time.strftime("%Y-%m-%d", time.gmtime())
    raw = f"results/{date}-{commit}.json"
    meta = {"date": date, "commit": commit, "dirty": dirty, "minutes": minutes, "machine": machine(), "raw": raw,
            "sizes": {k: os.environ.get(k, v) for k, v in SIZES.items()}}
    out_dir = WORK / "partial" if only else ROOT / "benchmarks"
    save_json(out_dir / raw, {"meta": meta, "reports": reports})
    if "fleet_scaling" in reports and "region_scaling" in reports:
        from benchmarks.plot import scaling_png  # matplotlib: only when there is a curve to draw
        scaling_png(reports["fleet_scaling"], reports["region_scaling"], out_dir / PLOT,
                    f"make bench, {date}, commit {commit}; {meta['machine']}")
    (out_dir / "RESULTS.md").write_text(markdown(reports, meta))
    print(f"\nwrote {out_dir / 'RESULTS.md'} and {out_dir / raw}" + (" (a partial run)" if only else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
