"""The rollback plan of one host: put back what its last restore replaced, from what the host recorded.

A restore records on the host, as it goes, everything it replaced
(``hostpaths.state_file``): trees moved aside, the database it kept, the units
it stopped. The record is read back from the host and checked against the
layout table before it is used: a line naming a path that is not one of the
layout's trees, or an aside copy that is not that tree's, is refused.
"""

from __future__ import annotations

from dataclasses import replace

from maasops import layouts, services
from maasops.command import Cmd, Q
from maasops.hostfiles import record
from maasops.hostpaths import ROLLED_BACK, RUN_ID, aside_path, run_dir, state_file
from maasops.parts import database
from maasops.parts.config import contents_list, put_back_inside
from maasops.parts.database import server_on
from maasops.plan import HostPlan, Phase, Step, StepId
from maasops.probe import HostFacts


class BadRecord(ValueError):
    """The host's record of its last restore is not one maasops wrote."""


def _trees(f: HostFacts) -> set[str]:
    return {f.on_host(t) for t in f.layout.archived_trees({"region", "rack"})}


def parse_files(f: HostFacts, run_id: str, state: list[str]) -> list[tuple[str, str, str]]:
    """The file moves a restore recorded, newest first: (kind, path, aside), each checked against the layout."""
    trees, moves = _trees(f), []
    for line in state:
        kind, _, rest = line.partition(" ")
        if kind not in ("aside", "aside-in", "new"):
            continue
        path, _, aside = rest.partition(" ")
        if path not in trees:
            raise BadRecord(f"the record names {path[:80]!r}, which is not one of this host's MAAS trees")
        if kind != "new" and aside != aside_path(path, run_id, kind == "aside-in"):
            raise BadRecord(f"the record's aside copy of {path} is {aside[:80]!r}, not this run's")
        moves.append((kind, path, aside))
    return list(reversed(moves))


def _file_step(kind: str, path: str, aside: str, run_id: str) -> Step:
    away = f"{path}{ROLLED_BACK}{run_id}"
    if kind == "aside":
        cmd = Cmd("if [ -e", Q(aside), "]; then if [ -e", Q(path), "] || [ -L", Q(path), "]; then mv -T", Q(path),
                  Q(away), "; fi && mv -T", Q(aside), Q(path), "; fi")
        return Step(StepId.PUT_BACK, f"put {path} back", cmd, Phase.FILES, key=path)
    if kind == "aside-in":
        inner = f"{path}/{ROLLED_BACK}{run_id}"
        keep = Cmd('mkdir -p -m 0700', Q(inner), '&& mv -- "$1"', Q(inner + "/"))
        cmd = put_back_inside(path, aside, contents_list(path, run_id), keep)
        return Step(StepId.PUT_BACK, f"put the contents of {path} back (a mount point)", cmd, Phase.FILES, key=path)
    cmd = Cmd("if [ -e", Q(path), "] || [ -L", Q(path), "]; then mv -T", Q(path), Q(away), "; fi")
    return Step(StepId.PUT_BACK, f"move restored {path} away (it was not there before)", cmd, Phase.FILES, key=path)


def _database_step(f: HostFacts, run_id: str, state: list[str],
                   credentials: database.Credentials | None) -> Step | None:
    """Put back the database the restore kept, when this host kept one (over the network with the operator's
    ``credentials`` where regiond.conf names no role)."""
    for line in state:
        kind, *words = line.split()
        if kind in ("kept-db", "new-db") and words:
            name, server = words[-1], server_on(f, "local")
        elif kind == "saved-db" and f.database and f.database.location != "local":
            name = f.database.name or layouts.DB_NAME_DEFAULT
            how = f.database.location if f.database.location == "maas-test-db" else "network"
            server = server_on(f, how, credentials)
        else:
            continue
        return Step(StepId.RELOAD_DATABASE, "put back the database the restore replaced",
                    database.put_back(server, name, run_id, run_dir(run_id), state_file(run_id)), Phase.DATABASE,
                    password_file=server.password_file)
    return None


def rollback_plan(f: HostFacts, run_id: str, state: list[str], roles: tuple[str, ...] = (),
                  credentials: database.Credentials | None = None) -> HostPlan:
    """Steps that put back what the restore ``run_id`` replaced on this host, by its record ``state``.

    ``roles``: the host's roles when the probe could not tell them (a restore killed half-way);
    ``credentials``: the operator's database role, where regiond.conf names none (Vault keeps it).
    """
    if not f.roles and roles:
        f = replace(f, roles=roles)
    if not RUN_ID.fullmatch(run_id):
        return HostPlan(f.host, f, error=f"the host's last restore record is {run_id[:40]!r}, not a maasops run")
    if "rolled-back" in state:
        return HostPlan(f.host, f, error=f"restore {run_id} was already rolled back")
    try:
        moves = parse_files(f, run_id, state)
    except BadRecord as exc:
        return HostPlan(f.host, f, error=str(exc))
    steps = []
    # Units running now, and those the restore stopped (they may still be down if it was killed).
    stopped = {u for line in state if line.startswith("stopped ") for u in line.split()[1:]}
    running = {u for u, s in f.unit_states.items() if s == "active"}
    units = tuple(u for u in f.layout.units(set(f.roles)) if u in stopped | running)
    now = services.unit_commands(f.install, units)
    if now:
        steps.append(Step(StepId.STOP_UNITS, "stop MAAS units", now.stop, Phase.STOP, undo=now.start_and_wait,
                          by_hand=now.start))
    db_step = _database_step(f, run_id, state, credentials)
    if db_step:
        steps.append(db_step)
    steps += [_file_step(kind, path, aside, run_id) for kind, path, aside in moves]
    steps.append(Step(StepId.RECORD_ROLLBACK, "record the rollback", record(state_file(run_id), "rolled-back"),
                      Phase.FILES))
    if now:
        phase = Phase.START_REGIONS if "region" in f.roles else Phase.START_RACKS
        steps += [Step(StepId.START_UNITS, "start MAAS units", now.start, phase),
                  Step(StepId.CHECK_UNITS, "check MAAS units are active", now.check, phase, sudo=False,
                       resolves=(StepId.STOP_UNITS,))]
    return HostPlan(f.host, f, tuple(steps), spec=run_id)
