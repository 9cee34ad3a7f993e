"""What every benchmark shares: lab sites, timed runs with peak memory, OpenSSH baselines, reports.

This machine is shared and noisy: every figure is the median of BENCH_RUNS runs (every
run's time is kept in the raw results), and every claim is a ratio against a baseline
measured in the same invocation, never a bare time.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from maasops import compression
from maasops.lab import lab as lab_mod
from maasops.lab.profiles import PROFILES

ROOT = Path(__file__).resolve().parent.parent
FAB = str(Path(sys.executable).parent / "fab")
WORK = Path(os.environ.get("BENCH_DIR", str(ROOT / ".bench")))  # not under /etc, /var or /usr: the lab overlays those
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DB_MB = int(os.environ.get("BENCH_DB_MB", "500"))
CODEC_FOR_AUTO = "zstd"  # what --compress auto picks on lab hosts (they all have zstd)


@dataclass
class Run:
    """One timed run: wall seconds, peak resident memory of the process in MiB, exit code."""

    seconds: float
    rss_mib: float
    code: int
    output: str = ""


@dataclass
class Measured:
    """Every run of one measurement; figures are the median run's."""

    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> Run:
        """The run whose time is the median (the lower middle one for an even count)."""
        ordered = sorted(self.runs, key=lambda r: r.seconds)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def seconds(self) -> float:
        """The median run's wall time."""
        return self.median.seconds

    @property
    def raw(self) -> list[float]:
        """Every run's wall time, in the order they ran."""
        return [round(r.seconds, 3) for r in self.runs]


def timed(argv: list[str] | str, stdout_to: Path | None = None, cwd: Path = ROOT) -> Run:
    """Run a command (a shell string or argv), wait for it, return its wall time and peak RSS."""
    shell = isinstance(argv, str)
    out = open(stdout_to, "wb") if stdout_to else subprocess.PIPE
    started = time.monotonic()
    proc = subprocess.Popen(argv, shell=shell, stdout=out, stderr=subprocess.PIPE if stdout_to else subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=cwd, executable="/bin/bash" if shell else None)
    text = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if stdout_to:
        out.close()
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, text + err)


def _checked(fn: Callable[[], Run], before: Callable[[], None] | None) -> Run:
    """One run of ``fn`` after ``before`` (untimed); a failed run stops the benchmark."""
    if before:
        before()
    r = fn()
    if r.code != 0:
        raise RuntimeError(f"benchmark command failed ({r.code}): {r.output[-3000:]}")
    return r


def median_of(fn: Callable[[], Run], runs: int = RUNS, before: Callable[[], None] | None = None) -> Measured:
    """``runs`` runs of ``fn`` (``before`` is called, untimed, before each); a failed run stops the benchmark."""
    return Measured([_checked(fn, before) for _ in range(runs)])


def interleaved(fns: dict[str, Callable[[], Run]], runs: int = RUNS,
                before: Callable[[], None] | None = None) -> dict[str, Measured]:
    """``runs`` rounds of one run of each of ``fns``, each round starting one further along, so that a drift in
    this shared machine's speed falls on every contender alike; ``before`` runs, untimed, before each run."""
    got = {name: Measured() for name in fns}
    names = list(fns)
    for i in range(runs):
        for name in names[i % len(names):] + names[:i % len(names)]:
            got[name].runs.append(_checked(fns[name], before))
    return got


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


def settle(the_lab: lab_mod.Lab, host: str = "region1") -> Callable[[], None]:
    """What runs, untimed, before each restore run: the region's PostgreSQL is vacuumed and checkpointed, and the
    kernel writes back what is pending.

    Every run then replaces a database at rest on disk, as a real restore does. Without it, a run that keeps the
    database it replaces (maasops's rollback copy) would still have to write back pages the run before it had just
    loaded, while a run that drops it (the manual steps, --no-rollback-copy) would have them discarded.
    """
    def run() -> None:
        the_lab.run(host, "runuser -u postgres -- vacuumdb --all --analyze --quiet && "
                          "runuser -u postgres -- psql -X -q -c CHECKPOINT && sync")
    return run


def fab(*args: str) -> list[str]:
    """The real fab command line."""
    return [FAB, *args]


def fresh_dir(name: str) -> Path:
    """An empty scratch directory under WORK."""
    d = WORK / "out" / name
    subprocess.run(["rm", "-rf", str(d)], check=True)
    d.mkdir(parents=True)
    return d


def compressor(codec: str) -> str:
    """The host command maasops compresses with for ``codec`` ("" for none): baselines use the same."""
    c = compression.codec(codec).compress
    return str(c) if c else ""


def piped(command: str, codec: str) -> str:
    """``command`` with its output compressed as maasops would for ``codec``."""
    return f"{command} | {compressor(codec)}" if compressor(codec) else command


def units_of(profile: str, roles: set[str]) -> str:
    """The MAAS units a host runs, as a shell word list (DHCPv6 stays inactive in the lab, as on most racks)."""
    return " ".join(u for u in PROFILES[profile].layout.units(roles) if u != "maas-dhcpd6")


def wait_ready(units: str, region: bool) -> str:
    """Shell that waits until ``units`` are active (and the region's API answers), as maasops checks after a start."""
    check = f"until systemctl is-active -q {units}; do sleep 0.2; done"
    if region:
        check += ("; until python3 -c 'import urllib.request as u; u.urlopen(\"http://localhost:5240/MAAS/api/2.0/"
                  "version/\", timeout=5)' 2>/dev/null; do sleep 0.2; done")
    return check


def secs(m: Measured) -> str:
    """A measurement's median time for a table."""
    return f"{m.seconds:.2f}"


@dataclass
class Ratio:
    """One ratio a benchmark reports, with the target it is read against (``op`` "≤", "≥", "<" or None)."""

    value: float
    op: str | None = None
    bound: float | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None when the ratio has no numeric target)."""
        if self.op is None or self.bound is None:
            return None
        return {"≤": self.value <= self.bound, "≥": self.value >= self.bound, "<": self.value < self.bound}[self.op]

    @property
    def target(self) -> str:
        """The target as text ("" when the ratio has none)."""
        return f"{self.op} {self.bound}×" if self.op else ""

    @property
    def verdict(self) -> str:
        """The target and whether it is met, or the note, as text."""
        if self.op is None:
            return self.note or "no target"
        return f"target {self.target}: {'met' if self.met else 'NOT met'}"


def report(name: str, title: str, rows: list[dict], ratios: dict[str, Ratio], baseline: str,
           raw: dict[str, list[float]], findings: list[str] | None = None) -> dict:
    """Print a benchmark's table and ratios; return everything about it (for RESULTS.md and the raw JSON).

    ``baseline`` says what the baseline does and how that matches maasops's work; ``raw`` every
    run's time per measured thing; ``findings`` what the numbers show, in words computed from them.
    """
    print(f"\n## {title}\n")
    print(tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True))
    print()
    for label, r in ratios.items():
        print(f"- {label}: {r.value:.2f}×  ({r.verdict})")
    for line in findings or []:
        print(f"- {line}")
    return {"name": name, "title": title, "rows": rows, "baseline": baseline, "raw_seconds": raw,
            "ratios": {k: {"value": round(r.value, 3), "target": r.target, "met": r.met, "verdict": r.verdict}
                       for k, r in ratios.items()},
            "findings": findings or [], "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def save_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
