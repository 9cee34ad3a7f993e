"""What the ``fab`` tasks do, behind the thin fabfile.

``fab task -H a,b,c`` calls a task once per host, serially. maasops tasks that
act on a fleet therefore only *enlist* each host in that call, and a post-task
(run once, after the last host) runs the whole fleet in parallel, as one
operation with one table. Without ``-H`` the fleet comes from ``--inventory``
or, failing that, from the lab in ``--lab-dir``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fabric import Connection
from invoke import Context, Exit, Task

from maasops import backup, backup_plan, crypto, fleet, inventory, plan, probe, report, restore, restore_plan, verify
from maasops.remote import RemoteError

FLEET_KEY = "maasops_fleet"
DEFAULT_LAB_DIR = ".lab"


@dataclass
class FleetRequest:
    """One fleet command as the user typed it: -H hosts (if any) and the task's options."""

    connections: list[Connection] = field(default_factory=list)
    options: dict = field(default_factory=dict)


def enlist(c: Context, task: str, **options) -> None:
    """Record this call's host (a ``-H`` Connection) and options for ``task``'s fleet run."""
    store = c.config.get(FLEET_KEY) or {}
    req = store.setdefault(task, FleetRequest(options=options))
    if isinstance(c, Connection):
        req.connections.append(c)
    c.config[FLEET_KEY] = store


def fleet_task(task: str, body: Callable[[Context, FleetRequest], None]) -> Task:
    """The post-task that runs ``body`` once over everything ``task`` enlisted."""
    def run_fleet(c: Context) -> None:
        store = c.config.get(FLEET_KEY) or {}
        req = store.pop(task, FleetRequest())
        c.config[FLEET_KEY] = store
        body(c, req)
    run_fleet.__name__ = f"{task}_fleet"
    return Task(run_fleet, name=f"{task}-fleet")


def targets(c: Context, req: FleetRequest) -> tuple[str, list[fleet.Target]]:
    """The deployment name and targets of a request: -H hosts, else --inventory, else the lab."""
    opts = req.options
    accept = bool(opts.get("accept_new_host_keys"))
    if req.connections:
        return opts.get("deployment") or "default", fleet.from_connections(req.connections, accept,
                                                                           opts.get("gateway"))
    inv = opts.get("inventory")
    if not inv:
        lab_inv = Path(opts.get("lab_dir") or DEFAULT_LAB_DIR) / "inventory.yaml"
        if not lab_inv.exists():
            raise Exit("No hosts: give -H host1,host2, --inventory FILE, or bring the lab up "
                       "(fab lab.up).", code=2)
        inv = lab_inv
    try:
        dep = inventory.load(inv)
    except inventory.InventoryError as exc:
        raise Exit(str(exc), code=2) from None
    return opts.get("deployment") or dep.name, fleet.from_deployment(dep, c.config, accept)


def error_text(exc: BaseException) -> str:
    """One line for a failure in a table cell."""
    return str(exc) if isinstance(exc, RemoteError) else f"{type(exc).__name__}: {exc}"


def probe_rows(results: dict[str, probe.HostFacts | BaseException]) -> list[dict]:
    """Table rows for probe results."""
    rows = []
    for name, facts in results.items():
        if isinstance(facts, BaseException):
            rows.append({"host": name, "install": "", "version": "", "roles": "", "database": "",
                         "units active": "", "free /var": "", "error": error_text(facts)})
            continue
        db = facts.database
        active = [u for u, s in facts.unit_states.items() if s == "active"]
        rows.append({
            "host": name, "install": facts.install or "none", "version": facts.short_version,
            "roles": "+".join(facts.roles) or "-",
            "database": f"{db.location}:{db.host}" if db else "-",
            "units active": f"{len(active)}/{len(facts.unit_states)}",
            "free /var": f"{facts.free_mib.get('/var', 0)} MiB",
            "error": "vault in use" if facts.vault else "",
        })
    return rows


def run_probe(c: Context, req: FleetRequest) -> None:
    """Probe every target in parallel and print a table; exit 1 when any host failed."""
    _, tgts = targets(c, req)
    results = fleet.each(tgts, lambda t: probe.probe(t.connection), int(req.options.get("parallel") or 8))
    for t in tgts:
        if isinstance(results[t.name], probe.HostFacts):
            for d in probe.differences(t.declared, results[t.name]):
                print(f"warning: {t.name}: {d}")
    print(report.table(probe_rows(results)))
    if any(isinstance(r, BaseException) for r in results.values()):
        raise Exit(code=1)


def _backup_options(opts: dict) -> backup_plan.BackupOptions:
    compress = opts.get("compress") or "gzip"
    if compress not in plan.COMPRESSORS:
        raise Exit(f"--compress must be one of {', '.join(plan.COMPRESSORS)}", code=2)
    encrypt_to = opts.get("encrypt_to") or None
    if encrypt_to:
        try:
            crypto.recipients(encrypt_to)
        except crypto.CryptoError as exc:
            raise Exit(f"--encrypt-to: {exc}", code=2) from None
    return backup_plan.BackupOptions(stop_postgresql=bool(opts.get("stop_postgresql")), encrypt_to=encrypt_to,
                              exclude_images=bool(opts.get("exclude_images")),
                              db_only_maas=bool(opts.get("db_only_maas")),
                              allow_vault=bool(opts.get("allow_vault")), compress=compress)


def run_backup(c: Context, req: FleetRequest, dry_run: bool | None = None) -> None:
    """Back up every target (or print the plan); exit non-zero when any host failed."""
    opts = req.options
    name, tgts = targets(c, req)
    code = backup.run(tgts, name, Path(opts.get("backup_dir") or "backups"), _backup_options(opts),
                      parallel=int(opts.get("parallel") or 8),
                      dry_run=bool(opts.get("dry_run")) if dry_run is None else dry_run).code
    if code:
        raise Exit(code=code)


def run_verify(backup_set: str, identity: str | None = None) -> None:
    """Check a backup set offline and print a table; exit 1 when anything is wrong."""
    try:
        ids = crypto.identities(Path(identity)) if identity else None
    except (OSError, crypto.CryptoError) as exc:
        raise Exit(f"--identity: {exc}", code=2) from None
    sc = verify.verify_set(Path(backup_set), ids=ids)
    print(report.table(verify.rows(sc)))
    for problem in sc.problems:
        print(f"set: {problem}")
    print(f"\n{backup_set}: {'OK' if sc.ok else 'DAMAGED OR INCOMPLETE: do not restore from it'}")
    if not sc.ok:
        raise Exit(code=1)


def _restore_options(opts: dict) -> restore_plan.RestoreOptions:
    return restore_plan.RestoreOptions(
        allow_upgrade=bool(opts.get("allow_upgrade")), maas_url=opts.get("maas_url") or None,
        database_host=opts.get("database_host") or None, safety_dump=bool(opts.get("safety_dump", True)),
        skip_database=bool(opts.get("skip_database")), identity=opts.get("identity") or None)


def run_restore(c: Context, req: FleetRequest, dry_run: bool | None = None) -> None:
    """Restore a set onto the targets, or roll the last restore back (--rollback)."""
    opts = req.options
    _, tgts = targets(c, req)
    parallel = int(opts.get("parallel") or 8)
    dry_run = bool(opts.get("dry_run")) if dry_run is None else dry_run
    if not opts.get("backup_set"):
        raise Exit("fab restore: which backup set? (fab restore backups/<deployment>/<time>)", code=2)
    if opts.get("rollback"):
        code = restore.rollback(Path(opts["backup_set"]), tgts, parallel, dry_run)
    else:
        try:
            mapping = restore.parse_map(opts.get("map"))
        except ValueError as exc:
            raise Exit(str(exc), code=2) from None
        code, _ = restore.run(Path(opts["backup_set"]), tgts, mapping, _restore_options(opts), parallel, dry_run)
    if code:
        raise Exit(code=code)


def run_plan(c: Context, req: FleetRequest) -> None:
    """Print the plan of ``what`` (backup or restore) for every target; touches nothing."""
    what = req.options.get("what")
    if what == "backup":
        run_backup(c, req, dry_run=True)
    elif what == "restore":
        run_restore(c, req, dry_run=True)
    else:
        raise Exit(f"fab plan: unknown operation {what!r} (known: backup, restore)", code=2)
