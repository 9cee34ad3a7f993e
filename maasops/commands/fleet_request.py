"""What every command shares: its request (hosts, options, where its words go), the fleet it acts on, the checks of
options several commands take, and how its outcome is reported.

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

from maasops import fleet, hostfiles, inventory, metrics, output, reposource
from maasops import manifest as mf
from maasops.options import DIRECTORY, OptionError, TaskOptions, TaskSpec, make_task, path_problem
from maasops.parts import database
from maasops.results import FAILED, INTERRUPTED, REFUSED, RunResult, code_for

FLEET_KEY = "maasops_fleet"
VERBOSITY_KEY = "maasops_verbosity"  # -q (-1) or -v (1): set by the maasops program
DOCUMENTS_KEY = "maasops_documents"  # the run's output.Documents: set by the maasops program
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
            emit_result(RunResult(operation, INTERRUPTED, error="interrupted"), out, opts, deployment())
        raise Exit("interrupted", code=INTERRUPTED) from None
    except Exit as exc:
        if not exc.code or out.emitted:
            raise
        result = RunResult(operation, code_for(exc.code, exc.message or ""), error=exc.message or "")
        emit_result(result, out, opts, deployment())
        raise Exit(exc.message, code=result.code) from None


def _run(c: Context, task: str, req: FleetRequest, run: Callable[[Context, FleetRequest], None]) -> None:
    """``run`` the request, its output the run's, always reported, every connection closed after."""
    req.out = output.Output(req.options.json, c.config.get(VERBOSITY_KEY) or 0, c.config.get(DOCUMENTS_KEY))
    try:
        with always_reported(task, req.out, req.options, lambda: req.deployment):
            run(c, req)
    finally:
        fleet.close_all(req.connections + [t.connection for t in req.targets])


def fleet_task(task: str, run: Callable[[Context, FleetRequest], None]) -> Task:
    """The post-task that runs ``run`` once over everything ``task`` enlisted (closing every connection after)."""
    def run_fleet(c: Context) -> None:
        store = c.config.get(FLEET_KEY) or {}
        req = store.pop(task, FleetRequest())
        c.config[FLEET_KEY] = store
        _run(c, task, req, run)
    run_fleet.__name__ = f"{task}_fleet"
    return Task(run_fleet, name=f"{task}-fleet")


def fleet_command(spec: TaskSpec, run: Callable[[Context, FleetRequest], None]) -> Task:
    """The task of a command that acts on a fleet: each -H host enlisted, then ``run`` once over them all."""
    return make_task(spec, enlist(spec.name), post=[fleet_task(spec.name, run)], typed=True)


def local_command(spec: TaskSpec, run: Callable[[Context, FleetRequest], None]) -> Task:
    """The task of a command that takes no -H host (the drill): ``run`` once per call, reported as a fleet
    command's run is."""
    def body(c: Context, options: TaskOptions) -> None:
        _run(c, spec.name, FleetRequest(options=options), run)
    return make_task(spec, body, typed=True)


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
               from_set: tuple[Path, SSHConfig] | None = None) -> inventory.Deployment | None:
    inv = opts.inventory or (None if opts.lab_dir else default_inventory())
    if not inv:
        lab_inv = Path(opts.lab_dir or DEFAULT_LAB_DIR) / "inventory.yaml"
        if from_set and not opts.lab_dir:
            return recorded_hosts(*from_set)
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


def deployment_of(opts: TaskOptions) -> str | None:
    """The deployment a task is limited to: --deployment, else the --inventory's (None: every deployment)."""
    if opts.deployment:
        return opts.deployment
    dep = inventory_of(opts)
    return dep.name if dep else None


def repo_ssh_config(opts: TaskOptions) -> Path | None:
    """The ssh_config that reaches an ``sftp:`` repository: the fleet's (the inventory's, or the lab's)."""
    dep = _inventory(opts, required=False)
    return dep.ssh_config if dep else None


def repository(opts: TaskOptions) -> reposource.Repo:
    """The repository ``--repo`` names, reached like the fleet (Exit with code 2 when it cannot be used)."""
    return reposource.repository(opts.repo, opts.repo_password_file, repo_ssh_config(opts),
                                 opts.accept_new_host_keys)


def path(value: str | None) -> Path | None:
    """A path option's value as a path (``~`` expanded), or None when it was not given."""
    return Path(value).expanduser() if value else None


def targets(c: Context, req: FleetRequest, set_dir: Path | None = None) -> Fleet:
    """What a request acts on: -H hosts, else --inventory (or the default inventory), else (``set_dir``: a local
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
        dep = _inventory(opts, from_set=(set_dir, c.config.base_ssh_config) if set_dir else None)
        try:
            tgts = fleet.from_deployment(dep, c.config, opts.accept_new_host_keys)
        except inventory.InventoryError as exc:
            raise Exit(str(exc), code=REFUSED) from None
        found = Fleet(_safe(opts.deployment or dep.name, "--deployment"), tgts, dep.signing_key, dep.allowed_signers)
    req.deployment, req.targets = found.name, found.targets
    return found


def emit_result(result: RunResult, out: output.Output, opts: TaskOptions, deployment: str | None = None) -> None:
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
    emit_result(result, out, opts, deployment)
    if result.code:
        if result.error:
            out.warn(f"maasops {result.operation}: {result.error}")
        raise Exit(code=result.code)


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


def credentials(opts: TaskOptions) -> database.Credentials | None:
    """The operator's database role and password file (checked by :func:`check_credentials`), or None."""
    if not opts.database_user:
        return None
    return database.Credentials(opts.database_user, str(Path(opts.database_password_file).expanduser()))


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
