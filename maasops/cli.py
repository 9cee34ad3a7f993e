"""What the tasks do, behind the thin task definitions in :mod:`maasops.namespace`.

``fab task -H a,b,c`` (and ``maasops task -H ...``) calls a task once per host,
serially. maasops tasks that act on a fleet therefore only *enlist* each host in
that call, and a post-task (run once, after the last host) runs the whole fleet
in parallel, as one operation with one table. Without ``-H`` the fleet comes from
``--inventory`` or, failing that, from the lab in ``--lab-dir``. Every connection
is closed when the operation ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fabric import Connection
from invoke import Context, Exit, Task

from maasops import (
    backup,
    backup_plan,
    crypto,
    database,
    dumps,
    fleet,
    hostfiles,
    inventory,
    metrics,
    output,
    preflight,
    probe,
    progress,
    report,
    reposource,
    restore,
    rollback,
    signing,
    stream,
    verify,
)
from maasops import manifest as mf
from maasops.compression import AUTO, CHOICES
from maasops.restore_plan import RestoreOptions
from maasops.results import FAILED, INTERRUPTED, OK, REFUSED, RunResult

FLEET_KEY = "maasops_fleet"
DEFAULT_LAB_DIR = ".lab"


@dataclass
class FleetRequest:
    """One fleet command as the user typed it: -H hosts (if any) and the task's options; where its words go."""

    connections: list[Connection] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    out: output.Output = field(default_factory=output.Output)
    deployment: str = ""  # known once the targets are
    targets: list[fleet.Target] = field(default_factory=list)


def enlist(task: str) -> Callable[..., None]:
    """A task body that records this call's host (a ``-H`` Connection) and options for ``task``'s fleet run."""
    def body(c: Context, **options) -> None:
        store = c.config.get(FLEET_KEY) or {}
        req = store.setdefault(task, FleetRequest(options=options))
        if isinstance(c, Connection):
            req.connections.append(c)
        c.config[FLEET_KEY] = store
    return body


@contextmanager
def always_reported(operation: str, out: output.Output, opts: dict, deployment: Callable[[], str]) -> Iterator[None]:
    """Within the block, a run that ends early (refused, Ctrl-C) still gets its JSON document and metrics.

    A Ctrl-C that reaches here (a backup or restore handles its own first) ends the command with exit code 130.
    """
    try:
        yield
    except KeyboardInterrupt:
        if not out.emitted:
            record(RunResult(operation, INTERRUPTED, error="interrupted"), out, opts, deployment())
        raise Exit("interrupted", code=INTERRUPTED) from None
    except Exit as exc:
        if exc.code and not out.emitted:
            record(RunResult(operation, exc.code, error=exc.message or ""), out, opts, deployment())
        raise


def fleet_task(task: str, run: Callable[[Context, FleetRequest], None]) -> Task:
    """The post-task that runs ``run`` once over everything ``task`` enlisted (closing every connection after)."""
    def run_fleet(c: Context) -> None:
        store = c.config.get(FLEET_KEY) or {}
        req = store.pop(task, FleetRequest())
        c.config[FLEET_KEY] = store
        req.out = output.Output(bool(req.options.get("json")))
        try:
            with always_reported(task, req.out, req.options,
                                 lambda: req.deployment or req.options.get("deployment") or ""):
                run(c, req)
        finally:
            for conn in req.connections + [t.connection for t in req.targets]:
                fleet.close(conn)
    run_fleet.__name__ = f"{task}_fleet"
    return Task(run_fleet, name=f"{task}-fleet")


def _safe(name: str, what: str) -> str:
    try:
        return mf.safe_name(name, what)
    except mf.ManifestError as exc:
        raise Exit(f"{exc}: it names a directory of the backup set", code=REFUSED) from None


@dataclass(frozen=True)
class Fleet:
    """What a request acts on: the deployment's name, its targets, and its keys (from the inventory or options)."""

    name: str
    targets: list[fleet.Target]
    sign_key: Path | None = None
    allowed_signers: Path | None = None


def _inventory(opts: dict, required: bool = True) -> inventory.Deployment | None:
    inv = opts.get("inventory")
    if not inv:
        lab_inv = Path(opts.get("lab_dir") or DEFAULT_LAB_DIR) / "inventory.yaml"
        if not lab_inv.exists():
            if not required:
                return None
            raise Exit("No hosts: give -H host1,host2, --inventory FILE, or bring the lab up (maasops lab.up).",
                       code=REFUSED)
        inv = lab_inv
    try:
        return inventory.load(inv)
    except inventory.InventoryError as exc:
        raise Exit(str(exc), code=REFUSED) from None


def inventory_of(opts: dict) -> inventory.Deployment | None:
    """The deployment ``--inventory`` names (None without one; Exit with code 2 when it cannot be read)."""
    return _inventory(opts, required=False) if opts.get("inventory") else None


def repo_ssh_config(opts: dict) -> Path | None:
    """The ssh_config that reaches an ``sftp:`` repository: the fleet's (the inventory's, or the lab's)."""
    dep = _inventory(opts, required=False)
    return dep.ssh_config if dep else None


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def targets(c: Context, req: FleetRequest) -> Fleet:
    """What a request acts on: -H hosts, else --inventory, else the lab."""
    opts = req.options
    accept = bool(opts.get("accept_new_host_keys"))
    sign_key, signers = _path(opts.get("sign_key")), _path(opts.get("allowed_signers"))
    if req.connections:
        if opts.get("inventory"):
            raise Exit("give hosts with -H or with --inventory, not both", code=REFUSED)
        tgts = fleet.from_connections(req.connections, accept, opts.get("jump_host"))
        for t in tgts:
            _safe(t.name, "host name")
        found = Fleet(_safe(opts.get("deployment") or "default", "--deployment"), tgts, sign_key, signers)
    else:
        dep = _inventory(opts)
        try:
            tgts = fleet.from_deployment(dep, c.config, accept)
        except inventory.InventoryError as exc:
            raise Exit(str(exc), code=REFUSED) from None
        found = Fleet(_safe(opts.get("deployment") or dep.name, "--deployment"), tgts, sign_key or dep.signing_key,
                      signers or dep.allowed_signers)
    req.deployment, req.targets = found.name, found.targets
    return found


def record(result: RunResult, out: output.Output, opts: dict, deployment: str | None = None) -> None:
    """Print the JSON document (``--json``) and write the metrics file (``--metrics-file``)."""
    out.emit(result.to_json())
    if opts.get("metrics_file"):
        metrics.write(Path(opts["metrics_file"]), result, deployment or "")


def finish(result: RunResult, out: output.Output, opts: dict, deployment: str | None = None) -> None:
    """Print the JSON document (``--json``), write the metrics file, and exit with the result's code."""
    record(result, out, opts, deployment)
    if result.code:
        raise Exit(code=result.code)


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


def run_probe(c: Context, req: FleetRequest) -> None:
    """Probe every target in parallel and print a table; exit 1 when any host failed."""
    out = req.out
    f = targets(c, req)
    name, tgts = f.name, f.targets
    results = fleet.probe_all(tgts, int(req.options.get("parallel") or fleet.PARALLEL))
    for t in tgts:
        if isinstance(results[t.name], probe.HostFacts):
            for d in probe.differences(t.declared, results[t.name]):
                out.say(f"warning: {t.name}: {d}")
    out.say(report.table(probe_rows(results)))
    failed = any(isinstance(r, BaseException) for r in results.values())
    out.emit({"operation": "probe", "deployment": name, "status": "failed" if failed else "ok",
              "exit_code": FAILED if failed else OK,
              "hosts": {n: output.facts_json(r) for n, r in sorted(results.items())}})
    if failed:
        raise Exit(code=FAILED)


def _compress(opts: dict) -> str:
    """--compress: auto by default (zstd where the host has it, else gzip); a set going into a restic repository is
    uncompressed (restic compresses it, after chunking it so that the next run's unchanged bytes are stored once)."""
    compress = opts.get("compress") or ("none" if opts.get("repo") else AUTO)
    if compress not in CHOICES:
        raise Exit(f"--compress must be one of {', '.join(CHOICES)}", code=REFUSED)
    if opts.get("repo") and (compress != "none" or opts.get("encrypt_to")):
        raise Exit("--repo: the set goes into restic as uncompressed, unencrypted tar and SQL, which restic "
                   "deduplicates, compresses and encrypts itself: leave out --compress and --encrypt-to",
                   code=REFUSED)
    return compress


def backup_options(opts: dict) -> backup_plan.BackupOptions:
    """The backup options the user gave (Exit with code 2 for values that cannot work)."""
    compress = _compress(opts)
    encrypt_to = opts.get("encrypt_to") or None
    if encrypt_to:
        try:
            crypto.recipients(encrypt_to)
        except crypto.CryptoError as exc:
            raise Exit(f"--encrypt-to: {exc}", code=REFUSED) from None
    name = opts.get("database_name") or None
    if name is not None and (len(name.encode()) > mf.MAX_IDENTIFIER or "\0" in name):
        raise Exit("--database-name is not a PostgreSQL database name", code=REFUSED)
    dump_format = opts.get("dump_format") or "auto"
    if dump_format not in dumps.FORMATS:
        raise Exit(f"--dump-format must be one of {', '.join(dumps.FORMATS)}", code=REFUSED)
    ceiling = int(opts.get("max_stream_gib") or stream.CEILING_GIB)
    if ceiling < 1:
        raise Exit("--max-stream-gib must be 1 or more", code=REFUSED)
    return backup_plan.BackupOptions(
        stop_postgresql=bool(opts.get("stop_postgresql")), exclude_images=bool(opts.get("exclude_images")),
        db_only_maas=bool(opts.get("db_only_maas")), allow_vault=bool(opts.get("allow_vault")), compress=compress,
        encrypt_to=encrypt_to, database_name=name, database_elsewhere=bool(opts.get("database_elsewhere")),
        dump_format=dump_format, max_stream_gib=ceiling, credentials=_credentials(opts))


def _credentials(opts: dict) -> database.Credentials | None:
    """The operator's database role and password file (both or neither; the file checked now)."""
    user, file = opts.get("database_user") or None, opts.get("database_password_file") or None
    if not user and not file:
        return None
    if not (user and file):
        raise Exit("--database-user and --database-password-file go together", code=REFUSED)
    if len(user.encode()) > mf.MAX_IDENTIFIER or "\0" in user:
        raise Exit("--database-user is not a PostgreSQL role name", code=REFUSED)
    try:
        database.password(file)
    except database.PasswordFileError as exc:
        raise Exit(f"--database-password-file: {exc}", code=REFUSED) from None
    return database.Credentials(user, str(Path(file).expanduser()))


def run_backup(c: Context, req: FleetRequest, dry_run: bool | None = None) -> None:
    """Back up every target (or print the plan); exit non-zero when any host failed."""
    opts, out = req.options, req.out
    f = targets(c, req)
    options = backup_options(opts)
    repo = reposource.repository(opts, repo_ssh_config(opts)) if opts.get("repo") else None
    request = backup.BackupRequest(f.targets, f.name, Path(opts.get("backup_dir") or "backups"), options,
                                   f.sign_key, int(opts.get("parallel") or fleet.PARALLEL),
                                   opts.get("dump_from") or None,
                                   float(opts.get("idle_timeout") or stream.IDLE_TIMEOUT), repo)
    with progress.for_output(out) as transfers:
        result = backup.run(request, bool(opts.get("dry_run")) if dry_run is None else dry_run, out.say, transfers)
    finish(result, out, opts, f.name)


def run_verify(c: Context, req: FleetRequest) -> None:
    """Check a backup set offline and print a table; exit 1 when anything is wrong."""
    opts, out = req.options, req.out
    backup_set = opts.get("backup_set")
    if not backup_set and not opts.get("repo"):
        raise Exit("maasops verify: which backup set? (maasops verify backups/<deployment>/<time>, or "
                   "maasops verify --repo REPO --set TIME|latest)", code=REFUSED)
    identity = opts.get("decrypt_key")
    try:
        ids = crypto.identities(Path(identity)) if identity else None
    except (OSError, crypto.CryptoError) as exc:
        raise Exit(f"--decrypt-key: {exc}", code=REFUSED) from None
    dep = _inventory(opts, required=False) if opts.get("inventory") else None
    signers = _path(opts.get("allowed_signers")) or (dep.allowed_signers if dep else None)
    policy = verify.Policy(signers or signing.default_allowed_signers(), bool(opts.get("trust_unsigned")),
                           bool(opts.get("database_elsewhere")))
    parallel = int(opts.get("parallel") or 4)
    if opts.get("repo"):
        repo = reposource.repository(opts, repo_ssh_config(opts))
        backup_set, sc = reposource.verify_from_repo(repo, opts, policy, parallel, ids, out.say)
    else:
        sc = verify.verify_set(Path(backup_set), policy, parallel, ids)
    out.say(report.table(verify.rows(sc)))
    for problem in sc.problems:
        out.say(f"set: {problem}")
    for note in sc.notes:
        out.say(f"note: {note}")
    out.say(f"\n{backup_set}: " + (f"OK, signed by {sc.signer or 'NOBODY'}" if sc.ok else
                                    "DAMAGED OR INCOMPLETE, or not trusted: do not restore from it"))
    out.emit(output.verify_json(sc))
    if not sc.ok:
        raise Exit(code=FAILED)


def restore_options(opts: dict, signers: Path | None = None) -> RestoreOptions:
    """The restore options the user gave (Exit with code 2 for values that cannot work)."""
    url, db_host = opts.get("maas_url") or None, opts.get("database_host") or None
    if url and not hostfiles.valid_url(url):
        raise Exit(f"--maas-url {url[:80]!r} is not an http(s) URL maasops will write into rackd.conf",
                   code=REFUSED)
    if db_host and not hostfiles.valid_host(db_host):
        raise Exit(f"--database-host {db_host[:80]!r} is not a host name or address", code=REFUSED)
    keep = int(opts.get("keep") or 1)
    if keep < 1:
        raise Exit("--keep must be 1 or more: the last restore's copies are what --rollback puts back", code=REFUSED)
    return RestoreOptions(
        allow_upgrade=bool(opts.get("allow_upgrade")), maas_url=url, database_host=db_host,
        rollback_copy=bool(opts.get("rollback_copy", True)), skip_database=bool(opts.get("skip_database")),
        identity=opts.get("decrypt_key") or None, keep=keep, database_elsewhere=bool(opts.get("database_elsewhere")),
        allowed_signers=signers, trust_unsigned=bool(opts.get("trust_unsigned")), credentials=_credentials(opts))


def run_restore(c: Context, req: FleetRequest, dry_run: bool | None = None) -> None:
    """Restore a set onto the targets, or roll the last restore back (--rollback)."""
    opts, out = req.options, req.out
    if not opts.get("backup_set") and not opts.get("repo"):
        raise Exit("maasops restore: which backup set? (maasops restore backups/<deployment>/<time>, or "
                   "maasops restore --repo REPO --set TIME|latest)", code=REFUSED)
    f = targets(c, req)
    set_dir, files = Path(opts.get("backup_set") or "."), None
    if opts.get("repo"):
        repo = reposource.repository(opts, repo_ssh_config(opts))
        set_dir, files = reposource.restore_source(repo, opts)
    options = restore_options(opts, f.allowed_signers)
    name, tgts = f.name, f.targets
    parallel = int(opts.get("parallel") or fleet.PARALLEL)
    dry_run = bool(opts.get("dry_run")) if dry_run is None else dry_run
    if opts.get("rollback"):
        result = rollback.run(set_dir, tgts, parallel, dry_run, out.say, options.credentials)
    else:
        try:
            mapping = preflight.parse_map(opts.get("map"))
        except ValueError as exc:
            raise Exit(str(exc), code=REFUSED) from None
        with progress.for_output(out) as transfers:
            result = restore.run(set_dir, tgts, mapping, options, parallel, dry_run, out.say, transfers, files)
    finish(result, out, opts, name)


def run_plan(c: Context, req: FleetRequest) -> None:
    """Print the plan of ``what`` (backup or restore) for every target; touches nothing."""
    what = req.options.get("what")
    if what == "backup":
        run_backup(c, req, dry_run=True)
    elif what == "restore":
        run_restore(c, req, dry_run=True)
    else:
        raise Exit(f"maasops plan: unknown operation {what!r} (known: backup, restore)", code=REFUSED)

