"""What the tasks do, behind the thin task definitions in :mod:`maasops.namespace`.

``fab task -H a,b,c`` (and ``maasops task -H ...``) calls a task once per host,
serially. maasops tasks that act on a fleet therefore only *enlist* each host in
that call, and a post-task (run once, after the last host) runs the whole fleet
in parallel, as one operation with one table. Without ``-H`` the fleet comes from
``--inventory`` or, failing that, from the lab in ``--lab-dir``. Every connection
is closed when the operation ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fabric import Connection
from invoke import Context, Exit, Task
from paramiko import SSHConfig

from maasops import (
    backup,
    backup_plan,
    crypto,
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
    verify,
)
from maasops import manifest as mf
from maasops.compression import AUTO
from maasops.options import DIRECTORY, OptionError, TaskOptions, path_problem
from maasops.parts import database
from maasops.restore_plan import RestoreOptions
from maasops.results import FAILED, INTERRUPTED, OK, REFUSED, RunResult, code_for

FLEET_KEY = "maasops_fleet"
VERBOSITY_KEY = "maasops_verbosity"  # -q (-1) or -v (1): set by the maasops program
DEFAULT_LAB_DIR = ".lab"
INVENTORY_ENV = "MAASOPS_INVENTORY"
DEFAULT_INVENTORY = "~/.config/maasops/inventory.yaml"


@dataclass
class FleetRequest:
    """One fleet command as the user typed it: -H hosts (if any) and the task's options; where its words go."""

    connections: list[Connection] = field(default_factory=list)
    options: TaskOptions = field(default_factory=TaskOptions)
    out: output.Output = field(default_factory=output.Output)
    deployment: str = ""  # known once the targets are
    targets: list[fleet.Target] = field(default_factory=list)


def enlist(task: str) -> Callable[[Context, TaskOptions], None]:
    """A task body that records this call's host (a ``-H`` Connection) and options for ``task``'s fleet run."""
    def body(c: Context, options: TaskOptions) -> None:
        store = c.config.get(FLEET_KEY) or {}
        req = store.setdefault(task, FleetRequest(options=options))
        if isinstance(c, Connection):
            req.connections.append(c)
        c.config[FLEET_KEY] = store
    return body


@contextmanager
def always_reported(operation: str, out: output.Output, opts: TaskOptions,
                    deployment: Callable[[], str]) -> Iterator[None]:
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
        if not exc.code or out.emitted:
            raise
        result = RunResult(operation, code_for(exc.code, exc.message or ""), error=exc.message or "")
        record(result, out, opts, deployment())
        raise Exit(exc.message, code=result.code) from None


def fleet_task(task: str, run: Callable[[Context, FleetRequest], None]) -> Task:
    """The post-task that runs ``run`` once over everything ``task`` enlisted (closing every connection after)."""
    def run_fleet(c: Context) -> None:
        store = c.config.get(FLEET_KEY) or {}
        req = store.pop(task, FleetRequest())
        c.config[FLEET_KEY] = store
        req.out = output.Output(req.options.json, c.config.get(VERBOSITY_KEY) or 0)
        try:
            with always_reported(task, req.out, req.options, lambda: req.deployment):
                run(c, req)
        finally:
            fleet.close_all(req.connections + [t.connection for t in req.targets])
    run_fleet.__name__ = f"{task}_fleet"
    return Task(run_fleet, name=f"{task}-fleet")


def _safe(name: str, what: str) -> str:
    try:
        return mf.safe_name(name, what)
    except mf.ManifestError as exc:
        raise Exit(f"{exc}: it names a directory of the backup set", code=REFUSED) from None


@dataclass(frozen=True)
class Fleet:
    """What a request acts on: the deployment's name, its targets, and the inventory's keys (if any)."""

    name: str
    targets: list[fleet.Target]
    sign_key: Path | None = None
    allowed_signers: Path | None = None


def default_inventory() -> Path | None:
    """The inventory used without -H, --inventory and --lab-dir: ``$MAASOPS_INVENTORY``, else
    ``~/.config/maasops/inventory.yaml`` when it exists."""
    if os.environ.get(INVENTORY_ENV):
        return Path(os.environ[INVENTORY_ENV]).expanduser()
    home = Path(DEFAULT_INVENTORY).expanduser()
    return home if home.exists() else None


def recorded_hosts(set_dir: Path, ssh_config: SSHConfig) -> inventory.Deployment:
    """The hosts a local set was backed up from, as it records them: where ``maasops restore SET`` goes without -H
    or an inventory. A host is reached by its name where the user's ``ssh_config`` has it (its HostName, ProxyJump,
    ...), else at the address the backup reached; nothing is contacted before the set verifies (Exit with code 2
    when the set cannot say)."""
    known = ssh_config.get_hostnames()
    try:
        records = mf.read_set(set_dir)
        hosts = tuple(inventory.InventoryHost(name, m.roles, name if name in known else m.address)
                      for name, m in sorted(records.hosts.items()))
    except mf.ManifestError as exc:
        raise Exit(f"{set_dir}: the set cannot say which hosts it came from: {exc}", code=REFUSED) from None
    for h in hosts:
        if not hostfiles.valid_host(h.address):
            raise Exit(f"{set_dir}: host {h.name} is recorded at {h.address[:80]!r}, not a host name or address; "
                       "give -H or --inventory", code=REFUSED)
    if not hosts:
        raise Exit(f"{set_dir}: the set records no host that was backed up; give -H or --inventory", code=REFUSED)
    return inventory.Deployment(records.set.deployment, hosts)


def _inventory(opts: TaskOptions, required: bool = True,
               recorded: tuple[Path, SSHConfig] | None = None) -> inventory.Deployment | None:
    inv = opts.inventory or (None if opts.lab_dir else default_inventory())
    if not inv:
        lab_inv = Path(opts.lab_dir or DEFAULT_LAB_DIR) / "inventory.yaml"
        if recorded and not opts.lab_dir:
            return recorded_hosts(*recorded)
        if not lab_inv.exists():
            if not required:
                return None
            raise Exit(f"No hosts: give -H host1,host2, --inventory FILE (or ${INVENTORY_ENV}, {DEFAULT_INVENTORY}), "
                       "or bring the lab up (maasops lab.up).", code=REFUSED)
        inv = lab_inv
    try:
        return inventory.load(inv)
    except inventory.InventoryError as exc:
        raise Exit(str(exc), code=REFUSED) from None


def inventory_of(opts: TaskOptions) -> inventory.Deployment | None:
    """The deployment ``--inventory`` names (None without one; Exit with code 2 when it cannot be read)."""
    return _inventory(opts, required=False) if opts.inventory else None


def repo_ssh_config(opts: TaskOptions) -> Path | None:
    """The ssh_config that reaches an ``sftp:`` repository: the fleet's (the inventory's, or the lab's)."""
    dep = _inventory(opts, required=False)
    return dep.ssh_config if dep else None


def repository(opts: TaskOptions) -> reposource.Repo:
    """The repository ``--repo`` names, reached like the fleet (Exit with code 2 when it cannot be used)."""
    return reposource.repository(opts.repo, opts.repo_password_file, repo_ssh_config(opts),
                                 opts.accept_new_host_keys)


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def targets(c: Context, req: FleetRequest, recorded: Path | None = None) -> Fleet:
    """What a request acts on: -H hosts, else --inventory (or the default inventory), else (``recorded``: a local
    set being restored) the hosts the set records, else the lab."""
    opts = req.options
    if req.connections:
        if opts.inventory:
            raise Exit("give hosts with -H or with --inventory, not both", code=REFUSED)
        tgts = fleet.from_connections(req.connections, opts.accept_new_host_keys, opts.jump_host)
        for t in tgts:
            _safe(t.name, "host name")
        found = Fleet(_safe(opts.deployment or "default", "--deployment"), tgts)
    else:
        dep = _inventory(opts, recorded=(recorded, c.config.base_ssh_config) if recorded else None)
        try:
            tgts = fleet.from_deployment(dep, c.config, opts.accept_new_host_keys)
        except inventory.InventoryError as exc:
            raise Exit(str(exc), code=REFUSED) from None
        found = Fleet(_safe(opts.deployment or dep.name, "--deployment"), tgts, dep.signing_key, dep.allowed_signers)
    req.deployment, req.targets = found.name, found.targets
    return found


def record(result: RunResult, out: output.Output, opts: TaskOptions, deployment: str | None = None) -> None:
    """Print the JSON document (``--json``) and write the metrics file (``--metrics-file``); the exit code is
    restic's where restic said why the run failed."""
    result.code = code_for(result.code, result.error)
    out.emit(result.to_json())
    if opts.metrics_file:
        try:
            metrics.write(Path(opts.metrics_file), result, deployment or "")
        except OSError as exc:
            raise Exit(f"--metrics-file {opts.metrics_file}: cannot be written: {exc.strerror}",
                       code=result.code or FAILED) from None


def finish(result: RunResult, out: output.Output, opts: TaskOptions, deployment: str | None = None) -> None:
    """Print the JSON document (``--json``), write the metrics file, and exit with the result's code."""
    record(result, out, opts, deployment)
    if result.code:
        if result.error:
            out.warn(f"maasops {result.operation}: {result.error}")
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
    results = fleet.probe_all(tgts, req.options.parallel)
    for t in tgts:
        if isinstance(results[t.name], probe.HostFacts):
            for d in probe.differences(t.declared, results[t.name]):
                out.warn(f"warning: {t.name}: {d}")
    out.say(report.table(probe_rows(results)))
    failed = any(isinstance(r, BaseException) for r in results.values())
    for n, r in sorted(results.items()):
        if isinstance(r, BaseException):
            out.warn(f"{n}: {r}")
    out.emit({"operation": "probe", "deployment": name, "status": "failed" if failed else "ok",
              "exit_code": FAILED if failed else OK,
              "hosts": {n: output.facts_json(r) for n, r in sorted(results.items())}})
    if failed:
        raise Exit(code=FAILED)


def _compress(opts: TaskOptions) -> str:
    """--compress: auto by default (zstd where the host has it, else gzip); a set going into a restic repository is
    uncompressed (restic compresses it, after chunking it so that the next run's unchanged bytes are stored once)."""
    return opts.compress or ("none" if opts.repo else AUTO)


def check_backup(opts: TaskOptions) -> None:
    """What a backup's options cannot be together (OptionError naming the flags)."""
    if opts.repo and (_compress(opts) != "none" or opts.encrypt_to):
        raise OptionError("--repo: the set goes into restic as uncompressed, unencrypted tar and SQL, which restic "
                          "deduplicates, compresses and encrypts itself: leave out --compress and --encrypt-to")
    if opts.encrypt_to:
        try:
            crypto.recipients(opts.encrypt_to)
        except crypto.CryptoError as exc:
            raise OptionError(f"--encrypt-to: {exc}") from None
    name = opts.database_name
    if name is not None and len(name.encode()) > mf.MAX_IDENTIFIER:
        raise OptionError("--database-name is not a PostgreSQL database name")
    check_credentials(opts)


def check_credentials(opts: TaskOptions) -> None:
    """--database-user and --database-password-file go together; the file is its owner's alone, with a password."""
    if bool(opts.database_user) != bool(opts.database_password_file):
        raise OptionError("--database-user and --database-password-file go together")
    if opts.database_user and len(opts.database_user.encode()) > mf.MAX_IDENTIFIER:
        raise OptionError("--database-user is not a PostgreSQL role name")
    if opts.database_password_file:
        try:
            database.password(opts.database_password_file)
        except database.PasswordFileError as exc:
            raise OptionError(f"--database-password-file: {exc}") from None


def _credentials(opts: TaskOptions) -> database.Credentials | None:
    """The operator's database role and password file (checked by :func:`check_credentials`), or None."""
    if not opts.database_user:
        return None
    return database.Credentials(opts.database_user, str(Path(opts.database_password_file).expanduser()))


def backup_options(opts: TaskOptions) -> backup_plan.BackupOptions:
    """The backup options the user gave, as the plan takes them (checked by :func:`check_backup`)."""
    return backup_plan.BackupOptions(
        stop_postgresql=opts.stop_postgresql, exclude_images=opts.exclude_images, db_only_maas=opts.db_only_maas,
        allow_vault=opts.allow_vault, compress=_compress(opts), encrypt_to=opts.encrypt_to,
        database_name=opts.database_name, database_elsewhere=opts.database_elsewhere,
        dump_format=opts.dump_format or "auto", max_stream_gib=opts.max_stream_gib, credentials=_credentials(opts))


def run_backup(c: Context, req: FleetRequest) -> None:
    """Back up every target (or print the plan, --dry-run); exit non-zero when any host failed."""
    _backup(c, req, req.options.dry_run)


def _backup(c: Context, req: FleetRequest, dry_run: bool) -> None:
    opts, out = req.options, req.out
    f = targets(c, req)
    repo = repository(opts) if opts.repo else None
    request = backup.BackupRequest(f.targets, f.name, Path(opts.backup_dir), backup_options(opts),
                                   _path(opts.sign_key) or f.sign_key, opts.parallel, opts.dump_from,
                                   float(opts.idle_timeout), repo)
    with progress.for_output(out) as transfers:
        result = backup.run(request, dry_run, out.say, transfers)
    finish(result, out, opts, f.name)


def check_set_named(opts: TaskOptions) -> None:
    """A set is named: the positional (a directory that exists), or --repo (with --set or the positional)."""
    if opts.repo:
        return
    if not opts.backup_set:
        raise OptionError("which backup set? give SET (backups/<deployment>/<time>), or --repo REPO --set "
                          "TIME|latest")
    check_local_set(opts)


def check_local_set(opts: TaskOptions) -> None:
    """The set named is a directory that exists."""
    problem = path_problem(Path(opts.backup_set).expanduser(), DIRECTORY)
    if problem:
        raise OptionError(f"{opts.backup_set}: {problem} (a backup set is a directory: backups/<deployment>/<time>)")


def check_restore(opts: TaskOptions) -> None:
    """A restore's set is named, and its values can be written where they go (OptionError naming the flag)."""
    check_set_named(opts)
    url, db_host = opts.maas_url, opts.database_host
    if url and not hostfiles.valid_url(url):
        raise OptionError(f"--maas-url {url[:80]!r} is not an http(s) URL maasops will write into rackd.conf")
    if db_host and not hostfiles.valid_host(db_host):
        raise OptionError(f"--database-host {db_host[:80]!r} is not a host name or address")
    try:
        preflight.parse_map(opts.map)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    check_credentials(opts)


def check_plan(opts: TaskOptions) -> None:
    """``plan backup`` takes a backup's options, ``plan restore`` a restore's."""
    (check_backup if opts.what == "backup" else check_restore)(opts)


def run_verify(c: Context, req: FleetRequest) -> None:
    """Check a backup set offline and print a table; exit 1 when anything is wrong."""
    opts, out = req.options, req.out
    try:
        ids = crypto.identities(Path(opts.decrypt_key)) if opts.decrypt_key else None
    except (OSError, crypto.CryptoError) as exc:
        raise Exit(f"--decrypt-key: {exc}", code=REFUSED) from None
    dep = inventory_of(opts)
    signers = _path(opts.allowed_signers) or (dep.allowed_signers if dep else None)
    policy = verify.Policy(signers or signing.default_allowed_signers(), opts.trust_unsigned,
                           opts.database_elsewhere)
    if opts.repo:
        backup_set, sc = reposource.verify_from_repo(repository(opts), opts.set or opts.backup_set,
                                                     opts.deployment, policy, opts.parallel, ids, out.say)
    else:
        backup_set, sc = opts.backup_set, verify.verify_set(Path(opts.backup_set), policy, opts.parallel, ids)
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


def restore_options(opts: TaskOptions, signers: Path | None = None) -> RestoreOptions:
    """The restore options the user gave, as the plan takes them (checked by :func:`check_restore`)."""
    return RestoreOptions(
        allow_upgrade=opts.allow_upgrade, maas_url=opts.maas_url, database_host=opts.database_host,
        rollback_copy=opts.rollback_copy, skip_database=opts.skip_database, identity=opts.decrypt_key,
        keep=opts.keep, database_elsewhere=opts.database_elsewhere, allowed_signers=signers,
        trust_unsigned=opts.trust_unsigned, credentials=_credentials(opts))


def run_restore(c: Context, req: FleetRequest) -> None:
    """Restore a set onto the targets, or roll the last restore back (--rollback)."""
    _restore(c, req, req.options.dry_run)


def _restore(c: Context, req: FleetRequest, dry_run: bool) -> None:
    opts, out = req.options, req.out
    # --rollback acts on the hosts it is given, never on ones the set names: it runs before any check of the set
    f = targets(c, req, None if opts.repo or opts.rollback else Path(opts.backup_set))
    set_dir, files = Path(opts.backup_set or "."), None
    if opts.repo:
        set_dir, files = reposource.restore_source(repository(opts), opts.set or opts.backup_set, opts.deployment)
    options = restore_options(opts, _path(opts.allowed_signers) or f.allowed_signers)
    if opts.rollback:
        result = rollback.run(set_dir, f.targets, opts.parallel, dry_run, out.say, _credentials(opts))
    else:
        with progress.for_output(out) as transfers:
            result = restore.run(set_dir, f.targets, preflight.parse_map(opts.map), options, opts.parallel, dry_run,
                                 out.say, transfers, files)
    finish(result, out, opts, f.name)


def run_plan(c: Context, req: FleetRequest) -> None:
    """Print the plan of ``what`` (backup or restore) for every target; touches nothing."""
    (_backup if req.options.what == "backup" else _restore)(c, req, True)
