"""Commands that stop, start and check MAAS's units on one host (the unit names come from the layout).

Starting a unit is not the end of it: a unit passes through "activating", and a
region is only of use once its API answers. :func:`unit_commands` therefore
checks by waiting, with a bound, until every unit is active (and fails at once
on one that failed); :func:`region_ready` waits until the region's API answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from maasops import layouts
from maasops.command import Cmd, Q
from maasops.probe import HostFacts

START_TIMEOUT = 120  # seconds for started units to become active
READY_TIMEOUT = 300  # seconds for a started region's API to answer
POLL = "0.2"  # seconds between two looks: a unit's state and the API are cheap to ask, and every restart waits on it


@dataclass(frozen=True)
class UnitCommands:
    """How to stop, start and check a set of MAAS units on one host."""

    units: tuple[str, ...]
    stop: Cmd
    start: Cmd
    check: Cmd

    @property
    def start_and_wait(self) -> Cmd:
        """Start the units and wait until they are active (what undoes a stop)."""
        return Cmd(self.start, "&&", self.check)


def wait_active(units: tuple[str, ...], timeout: int = START_TIMEOUT) -> Cmd:
    """Wait until every unit is active; fail at once when one failed, or after ``timeout`` seconds."""
    names = Cmd(*map(Q, units))
    return Cmd(
        f"end=$((SECONDS + {int(timeout)})); while :; do st=$(for u in", names, "; do",
        "printf '%s=%s\\n' \"$u\" \"$(", layouts.SYSTEMCTL, "is-active \"$u\")\"; done);",
        "bad=$(printf '%s\\n' \"$st\" | grep -v '=active$' || true);",
        "[ -z \"$bad\" ] && exit 0;",
        "if printf '%s\\n' \"$bad\" | grep -q '=failed$'; then echo \"units failed: $(echo $bad)\" >&2; exit 3; fi;",
        f"if [ $SECONDS -ge $end ]; then echo \"units not active after {int(timeout)}s: $(echo $bad)\" >&2;",
        "exit 3; fi; sleep", POLL, "; done")


def unit_commands(install: str, units: tuple[str, ...], timeout: int = START_TIMEOUT) -> UnitCommands | None:
    """Stop/start/wait-until-active commands for ``units`` (snap: ``snap stop/start maas``); None for no units."""
    if not units:
        return None
    check = wait_active(units, timeout)
    if install == "snap":
        return UnitCommands(units, Cmd("snap", "stop", Q(layouts.SNAP_NAME)),
                            Cmd("snap", "start", Q(layouts.SNAP_NAME)), check)
    names = Cmd(*map(Q, units))
    return UnitCommands(units, Cmd(layouts.SYSTEMCTL, "stop", names), Cmd(layouts.SYSTEMCTL, "start", names), check)


def running_units(facts: HostFacts) -> UnitCommands | None:
    """Commands for the MAAS units running on the host now (None when none runs)."""
    active = tuple(u for u in facts.layout.units(set(facts.roles)) if facts.unit_states.get(u) == "active")
    return unit_commands(facts.install, active)


def postgresql(verb: str) -> Cmd:
    """``systemctl start|stop postgresql``."""
    return Cmd(layouts.SYSTEMCTL, verb, layouts.POSTGRESQL_UNIT)


def region_ready(timeout: int = READY_TIMEOUT) -> Cmd:
    """Wait until the region's API answers on this host (its start-up finished), at most ``timeout`` seconds."""
    probe = ("import sys, urllib.request\n"
             "try:\n    urllib.request.urlopen(sys.argv[1], timeout=5).read()\n"
             "except Exception as e:\n    print(e, file=sys.stderr); sys.exit(1)\n")
    return Cmd(f"end=$((SECONDS + {int(timeout)})); until err=$(python3 -c", Q(probe), Q(layouts.REGION_READY_URL),
               "2>&1); do if [ $SECONDS -ge $end ]; then echo \"the region's API did not answer within",
               f"{int(timeout)}s: $err\" >&2; exit 3; fi; sleep", POLL, "; done")
