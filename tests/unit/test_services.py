"""Stopping, starting and checking MAAS's units: the commands for deb and snap, and the waits run for real.

The waits run with the local bash against a stand-in ``systemctl`` (and ``python3``) first on PATH that plays
back the states a test gives it, one a look.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from maasops import layouts, services
from maasops.command import Cmd
from maasops.probe import HostFacts
from maasops.services import postgresql, region_ready, running_units, unit_commands, wait_active

DEB_35 = "1:3.5.3-1"
FAKE_SYSTEMCTL = """#!/bin/bash
# systemctl is-active UNIT: the first line of $STATES/UNIT, dropped once read unless it is the last
f="$STATES/$2"
state=$(head -n1 "$f")
[ "$(wc -l < "$f")" -gt 1 ] && sed -i 1d "$f"
echo "$state"
[ "$state" = active ]
"""
FAKE_PYTHON = """#!/bin/bash
# python3 -c PROBE URL: records the URL; fails (saying why) until $STATES/api holds "up"
printf '%s\\n' "$3" >> "$STATES/urls"
grep -qx up "$STATES/api" 2>/dev/null && exit 0
echo "<urlopen error [Errno 111] Connection refused>" >&2; exit 1
"""


@pytest.fixture
def host(tmp_path):
    """Run a command as the host's shell would, with the stand-ins first on PATH; ``states`` sets what they say."""
    bin_dir, states = tmp_path / "bin", tmp_path / "states"
    bin_dir.mkdir()
    states.mkdir()
    for name, text in (("systemctl", FAKE_SYSTEMCTL), ("python3", FAKE_PYTHON)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STATES": str(states)}

    def run(command: Cmd, **given: list[str]) -> subprocess.CompletedProcess:
        for unit, seen in given.items():
            (states / unit).write_text("".join(s + "\n" for s in seen))
        return subprocess.run(["bash", "-c", str(command)], env=env, capture_output=True, text=True, timeout=30)

    run.states = states
    return run


def facts(install="deb", version=DEB_35, roles=("region", "rack"), **states) -> HostFacts:
    return HostFacts("region1", install, version, roles, unit_states=states)


def test_deb_units_are_stopped_and_started_by_name_with_systemctl():
    u = unit_commands("deb", ("maas-regiond", "maas-rackd"))
    assert u.units == ("maas-regiond", "maas-rackd")
    assert str(u.stop) == "systemctl stop maas-regiond maas-rackd"
    assert str(u.start) == "systemctl start maas-regiond maas-rackd"
    assert u.check == wait_active(("maas-regiond", "maas-rackd"))
    assert u.start_and_wait == Cmd(u.start, "&&", u.check)


def test_the_snap_is_stopped_and_started_whole_and_checked_by_its_units():
    u = unit_commands("snap", ("snap.maas.supervisor",))
    assert str(u.stop) == f"snap stop {layouts.SNAP_NAME}" and str(u.start) == f"snap start {layouts.SNAP_NAME}"
    assert u.check == wait_active(("snap.maas.supervisor",))


def test_no_units_no_commands():
    assert unit_commands("deb", ()) is None and unit_commands("snap", ()) is None


def test_a_unit_name_is_quoted_as_data():
    u = unit_commands("deb", ("maas-x; reboot",))
    assert str(u.stop) == "systemctl stop 'maas-x; reboot'" and "'maas-x; reboot'" in str(u.check)


def test_waiting_ends_at_once_when_every_unit_is_active(host):
    r = host(wait_active(("maas-regiond", "maas-rackd")), **{"maas-regiond": ["active"], "maas-rackd": ["active"]})
    assert r.returncode == 0, r.stderr


def test_waiting_waits_through_activating_until_the_unit_is_active(host):
    r = host(wait_active(("maas-regiond", "maas-rackd")),
             **{"maas-regiond": ["activating", "activating", "activating", "active"], "maas-rackd": ["active"]})
    assert r.returncode == 0, r.stderr
    assert (host.states / "maas-regiond").read_text() == "active\n"  # it looked until the unit was active


def test_a_failed_unit_fails_the_wait_at_once_naming_it(host):
    start = time.monotonic()
    r = host(wait_active(("maas-regiond", "maas-rackd"), timeout=60),
             **{"maas-regiond": ["active"], "maas-rackd": ["activating", "failed"]})
    assert r.returncode == 3 and "units failed: maas-rackd=failed" in r.stderr
    assert time.monotonic() - start < 30


def test_a_unit_still_activating_after_the_timeout_fails_the_wait_naming_it(host):
    r = host(wait_active(("maas-regiond",), timeout=1), **{"maas-regiond": ["activating"]})
    assert r.returncode == 3
    assert "units not active after 1s: maas-regiond=activating" in r.stderr


def test_running_units_are_the_layouts_units_the_probe_found_active():
    lay = layouts.layout_for("deb", layouts.parse_version(DEB_35))
    every = lay.units({"region", "rack"})
    states = {u: "active" for u in every} | {"maas-proxy": "inactive", "maas-dhcpd": "failed", "not-maas": "active"}
    u = running_units(facts(**states))
    assert u.units == tuple(x for x in every if x not in ("maas-proxy", "maas-dhcpd"))
    assert str(u.stop) == "systemctl stop " + " ".join(u.units)


def test_running_units_of_a_snap_stop_the_snap():
    u = running_units(facts("snap", "3.4.2-14353-g.abc", **{"snap.maas.supervisor": "active"}))
    assert u.units == ("snap.maas.supervisor",) and str(u.stop) == "snap stop maas"


def test_nothing_running_nothing_to_stop():
    assert running_units(facts(**{"maas-regiond": "inactive"})) is None


def test_postgresql_is_started_and_stopped_with_systemctl():
    assert str(postgresql("stop")) == "systemctl stop postgresql"
    assert str(postgresql("start")) == "systemctl start postgresql"


def test_region_ready_asks_the_regions_api_until_it_answers(host):
    (host.states / "api").write_text("down\n")
    cmd = region_ready(timeout=30)
    proc = subprocess.Popen(["bash", "-c", f"sleep 0.7; echo up > {host.states}/api"])
    r = host(cmd)
    proc.wait()
    assert r.returncode == 0, r.stderr
    urls = (host.states / "urls").read_text().splitlines()
    assert len(urls) > 1 and set(urls) == {layouts.REGION_READY_URL}


def test_region_ready_fails_after_the_timeout_with_what_the_api_said(host):
    r = host(region_ready(timeout=1))
    assert r.returncode == 3
    assert "the region's API did not answer within 1s: <urlopen error [Errno 111] Connection refused>" in r.stderr


def test_the_waits_are_bounded_by_default():
    assert f"+ {services.START_TIMEOUT}" in str(wait_active(("u",)))
    assert f"+ {services.READY_TIMEOUT}" in str(region_ready())
