"""What every benchmark shares: lab sites, timed runs with peak memory, OpenSSH baselines, tables.

This machine is shared and noisy: every figure is the median of BENCH_RUNS runs, and
every claim is a ratio against a baseline measured in the same run, never a bare time.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from maasops.lab import lab as lab_mod

ROOT = Path(__file__).resolve().parent.parent
FAB = str(Path(sys.executable).parent / "fab")
WORK = Path(os.environ.get("BENCH_DIR", str(ROOT / ".bench")))  # not under /etc, /var or /usr: the lab overlays those
RESULTS = ROOT / "benchmarks" / "results"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DB_MB = int(os.environ.get("BENCH_DB_MB", "500"))


@dataclass
class Run:
    """One timed run: wall seconds, peak resident memory of the process in MiB, exit code."""

    seconds: float
    rss_mib: float
    code: int
    output: str = ""


def timed(argv: list[str] | str, stdout_to: Path | None = None, stdin_from: Path | None = None,
          cwd: Path = ROOT) -> Run:
    """Run a command (a shell string or argv), wait for it, return its wall time and peak RSS."""
    shell = isinstance(argv, str)
    out = open(stdout_to, "wb") if stdout_to else subprocess.PIPE
    inp = open(stdin_from, "rb") if stdin_from else subprocess.DEVNULL
    started = time.monotonic()
    proc = subprocess.Popen(argv, shell=shell, stdout=out, stderr=subprocess.STDOUT if not stdout_to else
                            subprocess.PIPE, stdin=inp, cwd=cwd, executable="/bin/bash" if shell else None)
    text = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    for f in (out, inp):
        if hasattr(f, "close"):
            f.close()
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, text + err)


def median_of(fn: Callable[[], Run], runs: int = RUNS, before: Callable[[], None] | None = None) -> Run:
    """The run with the median wall time of ``runs`` runs (``before`` is called, untimed, before each)."""
    got = []
    for _ in range(runs):
        if before:
            before()
        r = fn()
        if r.code != 0:
            raise RuntimeError(f"benchmark command failed ({r.code}): {r.output[-2000:]}")
        got.append(r)
    mid = statistics.median(r.seconds for r in got)
    return min(got, key=lambda r: abs(r.seconds - mid))


@contextmanager
def site(name: str, **kwargs) -> Iterator[lab_mod.Lab]:
    """A lab site for a benchmark (no sudo password anywhere, so shell baselines stay plain), torn down after."""
    d = WORK / name
    started = time.monotonic()
    the_lab = lab_mod.up(d, sudo_password=False, **kwargs)
    print(f"[{name}: lab up in {time.monotonic() - started:.0f}s]", flush=True)
    try:
        yield the_lab
    finally:
        lab_mod.down(d)


def ssh(the_lab: lab_mod.Lab, host: str, command: str) -> str:
    """An OpenSSH command line running ``command`` on a lab host through its bastion, as an admin would."""
    return f"ssh -F {shlex.quote(str(the_lab.ssh_config))} {host} {shlex.quote(command)}"


def fab(*args: str) -> list[str]:
    """The real fab command line."""
    return [FAB, *args]


def fresh_dir(name: str) -> Path:
    """An empty scratch directory under WORK."""
    d = WORK / "out" / name
    subprocess.run(["rm", "-rf", str(d)], check=True)
    d.mkdir(parents=True)
    return d


def ratio(a: float, b: float) -> str:
    """a / b as 0.00×."""
    return f"{a / b:.2f}×" if b else "-"


def report(name: str, title: str, rows: list[dict], ratios: dict[str, tuple[float, str]]) -> dict:
    """Print a benchmark's table and ratios (each with its target), save them as JSON, return them."""
    print(f"\n## {title}\n")
    print(tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True))
    print()
    for label, (value, target) in ratios.items():
        print(f"- {label}: {value:.2f}×  (target {target})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"name": name, "title": title, "rows": rows,
            "ratios": {k: {"value": round(v, 3), "target": t} for k, (v, t) in ratios.items()},
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2))
    return data


def secs(r: Run) -> str:
    """A run's wall time for a table."""
    return f"{r.seconds:.2f}"
