"""``make bench``: run all six benchmarks (and the memory check), print every table, write RESULTS.md.

Sizes: BENCH_DB_MB (500), BENCH_TRANSFER_MB (1024), BENCH_BIG_DB_MB (1024), BENCH_RUNS (3).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

from benchmarks import compression, fleet, memory, single_controller, transfer
from benchmarks.common import DB_MB, RESULTS, ROOT, RUNS

ORDER = ("single_controller", "fleet", "transfer", "downtime", "compression", "restore", "memory")


def machine() -> str:
    """One line on the machine the figures come from."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.node()}: {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}, "
            f"Python {platform.python_version()}")


def markdown(reports: dict[str, dict], seconds: float) -> str:
    """RESULTS.md from the reports of one run."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    out = [f"# Benchmark results\n\nFigures from `make bench` (its last invocation took {seconds / 60:.0f} min) on "
           f"{time.strftime('%Y-%m-%d', time.gmtime())}, commit {commit}.\n\n- machine: {machine()}\n"
           f"- sizes: BENCH_DB_MB={DB_MB}, BENCH_RUNS={RUNS} (each figure is the median run), "
           f"BENCH_TRANSFER_MB={os.environ.get('BENCH_TRANSFER_MB', '1024')}, "
           f"BENCH_BIG_DB_MB={os.environ.get('BENCH_BIG_DB_MB', '1024')}\n"
           "- every host is a lab host on this same machine (its own sshd, sudo, PostgreSQL), reached through "
           "the lab's bastion; the shell baselines use OpenSSH with the same ssh_config. This machine is shared "
           "and noisy: read the ratios, not the seconds.\n"]
    for name in ORDER:
        r = reports.get(name)
        if not r:
            continue
        out.append(f"\n## {r['title']}\n\n")
        head = list(r["rows"][0])
        out.append("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
        out += ["| " + " | ".join(str(row.get(h, "")).replace("|", "\\|") for h in head) + " |\n"
                for row in r["rows"]]
        out.append("\n")
        out += [f"- **{k}: {v['value']:.2f}×** (target {v['target']})\n" for k, v in r["ratios"].items()]
    return "".join(out)


MODULES = {"single_controller": single_controller, "fleet": fleet, "transfer": transfer,
           "compression": compression, "memory": memory}


def main(only: list[str]) -> None:
    """Run the benchmarks (all, or those named) and write benchmarks/RESULTS.md from every result on record.

    The analysis section of RESULTS.md is kept from the old file.
    """
    started = time.monotonic()
    for name in only or MODULES:
        MODULES[name].run()
    reports = {p.stem: json.loads(p.read_text()) for p in RESULTS.glob("*.json")}
    path = ROOT / "benchmarks" / "RESULTS.md"
    notes = ""
    if path.exists() and "\n## Analysis" in path.read_text():
        notes = path.read_text()[path.read_text().index("\n## Analysis"):]
    path.write_text(markdown(reports, time.monotonic() - started) + notes)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
