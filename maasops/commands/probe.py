"""``maasops probe``: look at every controller (read-only) and print what each runs."""

from __future__ import annotations

from invoke import Context, Exit

from maasops import fleet, output, probe
from maasops.commands.fleet_request import FleetRequest, targets
from maasops.options import HOSTS, TaskSpec
from maasops.results import FAILED, OK

SPEC = TaskSpec("probe", "1. Look at every controller (read-only): install, version, roles, database, units.",
                HOSTS + ("json",))


def probe_rows(results: dict[str, probe.HostFacts | BaseException]) -> list[dict]:
    """Table rows for probe results."""
    rows = []
    for name, facts in sorted(results.items()):
        if isinstance(facts, BaseException):
            rows.append({"host": name, "install": "", "version": "", "roles": "", "database": "",
                         "units active": "", "error": str(facts)})
            continue
        db = facts.database
        active = [u for u, s in facts.unit_states.items() if s == "active"]
        rows.append({
            "host": name, "install": facts.install or "none", "version": facts.short_version,
            "roles": "+".join(facts.roles) or "-", "database": f"{db.location}:{db.host}" if db else "-",
            "units active": f"{len(active)}/{len(facts.unit_states)}", "error": "vault in use" if facts.vault else "",
        })
    return rows


def run(c: Context, req: FleetRequest) -> None:
    """Probe every target in parallel and print a table; exit 1 when any host failed."""
    out = req.out
    f = targets(c, req)
    name, tgts = f.name, f.targets
    results = fleet.probe_all(tgts, req.options.parallel)
    for t in tgts:
        if isinstance(results[t.name], probe.HostFacts):
            for d in probe.differences(t.declared, results[t.name]):
                out.warn(f"warning: {t.name}: {d}")
    out.say(output.table(probe_rows(results)))
    failed = any(isinstance(r, BaseException) for r in results.values())
    for n, r in sorted(results.items()):
        if isinstance(r, BaseException):
            out.warn(f"{n}: {r}")
    out.emit({"operation": "probe", "deployment": name, "status": "failed" if failed else "ok",
              "exit_code": FAILED if failed else OK,
              "hosts": {n: output.facts_json(r) for n, r in sorted(results.items())}})
    if failed:
        raise Exit(code=FAILED)
