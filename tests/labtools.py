"""Helpers for tests that drive the real `fab` against a lab."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from maasops import connect, fleet, inventory
from maasops.lab import lab as lab_mod
from maasops.lab.profiles import PROFILES

ROOT = Path(__file__).resolve().parent.parent
FAB = str(Path(sys.executable).parent / "fab")
# Every lab profile in one deployment: region1 deb 3.5 region+rack (DB), region2 snap 3.5,
# racks deb 2.9, snap 2.9/3.4/3.5 (rack4 needs a sudo password); reached via the bastion.
MIXED_PROFILE = "deb-3.5,region2=snap-3.5,rack1=deb-2.9,rack2=snap-2.9,rack3=snap-3.4,rack4=snap-3.5"


def need_root() -> None:
    """Skip a lab test without root, unless lab tests are required (make test, CI): then fail it."""
    if os.geteuid() != 0:
        why = "the lab needs root (network and mount namespaces)"
        if os.environ.get("MAASOPS_LAB_REQUIRED"):
            pytest.fail(why + ": MAASOPS_LAB_REQUIRED is set, lab tests never skip here")
        pytest.skip(why)


def mixed_lab(tmp_path_factory, name: str) -> Iterator[lab_mod.Lab]:
    """A module fixture's body: the MIXED_PROFILE lab (2 regions, 4 racks), torn down afterwards."""
    need_root()
    d = tmp_path_factory.mktemp(name) / "lab"
    the_lab = lab_mod.up(d, regions=2, racks=4, profile=MIXED_PROFILE, db_mb=2, combined=True)
    try:
        yield the_lab
    finally:
        lab_mod.down(d)


def fab(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the real `fab` from the project root."""
    return subprocess.run([FAB, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


PROGRESS = re.compile(r"^\S+: .+: [\d.]+ (B|KiB|MiB|GiB)( of | in |, )")  # progress.Lines' lines


def table_row(text: str, host: str) -> str:
    """A run's table row for ``host`` (a progress line, ``host: step: ...``, is not one)."""
    return next(ln for ln in text.splitlines() if ln.split()[:1] == [host])


def without_progress(text: str) -> list[str]:
    """A run's output lines, less the transfers' progress lines."""
    return [ln for ln in text.splitlines() if not PROGRESS.match(ln)]


def sets(backup_dir: Path, deployment: str = "lab") -> list[Path]:
    """The backup sets of a deployment, oldest first."""
    d = backup_dir / deployment
    return sorted(p for p in d.iterdir() if p.is_dir()) if d.exists() else []


def backed_up(inventory: Path, backup_dir: Path, *options: str) -> Path:
    """The one set a real `fab backup` of ``inventory`` into ``backup_dir`` made (the test fails if it failed)."""
    r = fab("backup", "--inventory", str(inventory), "--backup-dir", str(backup_dir), *options)
    assert r.returncode == 0, r.stdout + r.stderr
    [s] = sets(backup_dir)
    return s


def unit_states(the_lab: lab_mod.Lab) -> dict[str, str]:
    """`systemctl is-active` of every MAAS unit, per host."""
    out = {}
    for h in the_lab.hosts:
        if h.profile:
            units = PROFILES[h.profile].layout.units(frozenset(h.roles))
            r = the_lab.run(h.name, f"systemctl is-active {' '.join(units)}", check=False)
            out[h.name] = r.stdout
    return out


def start_and_wait(*units: str) -> str:
    """A shell command that starts units and waits until they are active (they pass through activating)."""
    names = " ".join(units)
    return (f"systemctl start {names} && for i in $(seq 100); do systemctl is-active -q {names} && break; "
            "sleep 0.1; done")


def journal_lines(the_lab: lab_mod.Lab) -> dict[str, int]:
    """How many unit starts/stops each host's stand-ins have logged."""
    return {h.name: int(the_lab.run(h.name, "cat /var/log/maas-lab/units.log 2>/dev/null | wc -l || true").stdout)
            for h in the_lab.hosts if h.profile}


def targets(the_lab: lab_mod.Lab) -> dict[str, fleet.Target]:
    """Strict connections to every host of the lab's inventory, by name."""
    dep = inventory.load(the_lab.inventory)
    return {t.name: t for t in fleet.from_deployment(dep, connect.fabric_config())}


# pgrep/pkill options that keep to one lab host: lab hosts share this machine's process table (no PID
# namespace), and other labs (pytest -n workers) run the same commands at the same time.
THIS_HOST = "--ns $$ --nslist net"


def remove_tool(lab, host: str, tool: str) -> None:
    """Remove a tool_on wrapper and end its processes on that host (the pattern does not match this command)."""
    lab.run(host, f"rm -f /usr/local/bin/{tool}; pkill {THIS_HOST} -f '/usr/local/bin/[{tool[0]}]{tool[1:]}'",
            check=False)


def small_lab(tmp_path_factory, name: str, profile: str):
    need_root()
    d = tmp_path_factory.mktemp(name) / "lab"
    the_lab = lab_mod.up(d, regions=1, racks=1, profile=f"{profile},rack1=deb-3.5", db_mb=1)
    try:
        yield the_lab
    finally:
        lab_mod.down(d)
