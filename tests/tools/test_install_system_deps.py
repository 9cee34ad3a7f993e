"""tools/install-system-deps.sh on this machine: restic 0.18 alone from Debian 13 on Debian 12, and a second run
that changes nothing (it needs root, and Debian 12; the first run may fetch packages)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from maasops import repo as restic
from tests.labtools import ROOT

pytestmark = [pytest.mark.lab, pytest.mark.slow]
SCRIPT = ROOT / "tools" / "install-system-deps.sh"
ADDED = (Path("/etc/apt/sources.list.d/maasops-trixie.sources"),
         Path("/etc/apt/preferences.d/maasops-restic-from-trixie"))


def bookworm() -> bool:
    text = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    return "VERSION_CODENAME=bookworm" in text


def run_script() -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)


def test_on_debian_12_restic_alone_comes_from_trixie_and_a_second_run_changes_nothing():
    if os.geteuid() != 0 or not bookworm():
        pytest.skip("needs root on Debian 12")
    first = run_script()
    assert first.returncode == 0, first.stdout + first.stderr
    version = restic.parse_version(subprocess.run(["restic", "version"], capture_output=True, text=True).stdout)
    assert version[:2] >= (0, 18) and restic.Paths(version).parallel_dump
    assert f"system packages: ok (restic {restic.dotted(version)})" in first.stdout
    policy = subprocess.run(["apt-cache", "policy", "restic"], capture_output=True, text=True).stdout
    assert "990" in policy and "trixie/main" in policy
    # the pin moves nothing else: an upgrade would take no package from trixie
    upgrade = subprocess.run(["apt-get", "-s", "upgrade"], capture_output=True, text=True).stdout
    assert "trixie" not in upgrade and "Debian:13" not in upgrade
    stamps = [p.stat().st_mtime_ns for p in ADDED]
    second = run_script()
    assert second.returncode == 0 and second.stdout == first.stdout.splitlines()[-1] + "\n", second.stderr
    assert [p.stat().st_mtime_ns for p in ADDED] == stamps
