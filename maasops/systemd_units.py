"""The systemd units that run backup → prune → check on a timer: written, shown, removed (``maasops schedule
install | status | remove``, :mod:`maasops.commands.schedule`).

``install`` writes, on the machine it runs on (the jump host), a oneshot service
running ``maasops backup --repo``, ``maasops prune`` and ``maasops check`` in turn
(a failed step fails the unit and skips the rest), each recording its outcome in
the ``--metrics-file`` for the node exporter's textfile collector (the alert), and
a timer that starts it ``--on-calendar`` (``Persistent=``: a run missed while the
machine was off happens at boot). Every path in the units is absolute; the
repository's password is named by its file, never written into a unit.
With the default ``--unit-dir`` the timer is enabled and started; with another
directory the units are only written (to check them: ``systemd-analyze verify``).
Run as root, ``install`` refuses when any file the unit would run, read or write
into (maasops's script, interpreter and package, the inventory and the files it
names, the password file, the metrics and unit directories) could be changed by
another user: it names the file, its owner and mode; nothing is copied.
"""

from __future__ import annotations

import getpass
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from invoke import Exit

import maasops
from maasops import inventory, output
from maasops import repo as restic
from maasops.options import OPTIONS, TaskOptions
from maasops.results import REFUSED

PREFIX = "maasops-backup-"
SYSTEM_DIR = OPTIONS["unit_dir"].default
SYSTEMCTL_TIMEOUT = 60
UNIT_CHAR = re.compile(r"[^A-Za-z0-9_.-]")


def unit_name(deployment: str) -> str:
    """The service's and timer's name (without suffix) for a deployment."""
    return PREFIX + UNIT_CHAR.sub("_", deployment)


def exec_arg(arg: str) -> str:
    """One argument of an ExecStart= line, quoted as systemd reads it (specifiers and variables escaped)."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def maasops_binary() -> Path:
    """The maasops console script this Python runs (the one the units call)."""
    beside = Path(sys.executable).parent / "maasops"
    found = beside if beside.exists() else Path(shutil.which("maasops") or "maasops")
    return found.absolute()


def commands(opts: TaskOptions, inv: Path, password: Path, metrics: Path) -> list[list[str]]:
    """The three runs of the service: backup into the repository, prune, check."""
    repo = ["--repo", opts.repo, "--repo-password-file", str(password), "--inventory", str(inv),
            "--metrics-file", str(metrics)]
    keep = [f"--keep-daily={opts.keep_daily}", f"--keep-weekly={opts.keep_weekly}",
            f"--keep-monthly={opts.keep_monthly}"]
    subset = ["--read-data-subset", opts.read_data_subset] if opts.read_data_subset else []
    # a Vault region's database role (regiond.conf names none) and the stream ceiling, as the backup would take them
    backup = ["--max-stream-gib", str(opts.max_stream_gib)]
    if opts.database_user:
        backup += ["--database-user", opts.database_user,
                   "--database-password-file", str(Path(opts.database_password_file).absolute())]
    binary = str(maasops_binary())
    return [[binary, "backup", *repo, *backup], [binary, "prune", *repo, *keep], [binary, "check", *repo, *subset]]


def service_unit(deployment: str, runs: list[list[str]], user: str) -> str:
    """The oneshot service: each run an ExecStart= line, in order."""
    lines = ["[Unit]", f"Description=maasops: back up MAAS deployment {deployment} into its restic repository, "
             "prune, check", "Wants=network-online.target", "After=network-online.target", "",
             "[Service]", "Type=oneshot", f"User={user}", "UMask=0077", "NoNewPrivileges=yes", "PrivateTmp=yes"]
    lines += ["ExecStart=" + " ".join(exec_arg(a) for a in run) for run in runs]
    return "\n".join(lines) + "\n"


def timer_unit(deployment: str, on_calendar: str) -> str:
    """The timer that starts the service."""
    return "\n".join(["[Unit]", f"Description=maasops: scheduled backup of {deployment}", "",
                      "[Timer]", f"OnCalendar={on_calendar}", "Persistent=true", "RandomizedDelaySec=5min", "",
                      "[Install]", "WantedBy=timers.target", ""])


def _systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Exit(f"systemctl {args[0]}: {exc}", code=1) from None
    if check and proc.returncode:
        raise Exit(f"systemctl {' '.join(args)} failed: {proc.stderr.strip()[-300:]}", code=1)
    return proc


def _absolute(value: str | None, what: str) -> Path:
    path = Path(value).expanduser().absolute() if value else None
    if path is None or "\n" in str(path):
        raise Exit(f"maasops schedule install needs {what}", code=REFUSED)
    return path


def _calendar(value: str) -> str:
    if not value or "\n" in value:
        raise Exit("--on-calendar: a systemd calendar expression (daily, *-*-* 02:30, Mon..Fri 03:00)",
                   code=REFUSED)
    if shutil.which("systemd-analyze"):
        proc = subprocess.run(["systemd-analyze", "calendar", value], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        if proc.returncode:
            raise Exit(f"--on-calendar {value!r}: {proc.stderr.strip()[-200:]}", code=REFUSED)
    return value


def _changeable(path: Path) -> str | None:
    """How a user other than root could change ``path`` (or what it resolves to): the first of it and the directories
    above it that such a user owns or may write to (a sticky directory's root-owned entries are safe), or None."""
    for target in dict.fromkeys((path.absolute(), path.resolve())):
        for p in [*reversed(target.parents), target]:
            try:
                st = os.lstat(p)
            except OSError as exc:
                return f"{p}: {exc.strerror}"
            mode = stat.S_IMODE(st.st_mode)
            writable = mode & 0o002 or (mode & 0o020 and st.st_gid != 0)
            if st.st_uid != 0 or (writable and not stat.S_ISLNK(st.st_mode)
                                  and not (stat.S_ISDIR(st.st_mode) and mode & stat.S_ISVTX)):
                return f"{p} (owner {_owner(st.st_uid)}, mode {mode:04o})"
    return None


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _interpreter(script: Path) -> list[Path]:
    """The interpreter a ``#!`` script runs with (none for a binary)."""
    try:
        with open(script, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return []
    return [Path(first[2:].split()[0].decode(errors="replace"))] if first.startswith(b"#!/") else []


def used_files(dep: inventory.Deployment, inv: Path, password: Path, metrics: Path, unit_dir: Path) -> list[Path]:
    """Every file (and directory) a root unit runs, reads or writes into: maasops itself (its script, interpreter and
    package), the inventory and the files it names, the repository's password, the metrics and unit directories."""
    binary = maasops_binary()
    package = Path(maasops.__file__).parent
    named = [dep.ssh_config, dep.signing_key, *(h.sudo_password_file for h in dep.hosts)]
    return [binary, *_interpreter(binary), package, *sorted(package.rglob("*")), inv,
            *filter(None, named), password, metrics.parent, unit_dir]


def refuse_user_writable(files: list[Path]) -> None:
    """Run as root, refuse (Exit) when a user other than root could change one of ``files``: the root unit would run
    that user's code or read that user's settings. The message names the file, its owner and mode."""
    if os.geteuid() != 0:
        return
    for f in files:
        why = _changeable(f)
        if why:
            raise Exit(f"schedule install as root: the unit would use {f}, which a user other than root can change: "
                       f"{why}. Make it root's and not group- or world-writable, or install the schedule as the user "
                       "who owns it", code=REFUSED)


def install(opts: TaskOptions, say) -> dict:
    """Write the service and timer; enable and start the timer when they went to the system's unit directory.

    Run as root, every file the unit uses must be root's alone (:func:`refuse_user_writable`)."""
    inv = _absolute(opts.inventory, "--inventory FILE (the deployment it backs up)")
    try:
        dep = inventory.load(inv)
        password = restic.password_file(opts.repo_password_file).absolute()
    except (inventory.InventoryError, restic.RepoError) as exc:
        raise Exit(str(exc), code=REFUSED) from None
    if not opts.repo:
        raise Exit("maasops schedule install needs --repo REPO", code=REFUSED)
    metrics = _absolute(opts.metrics_file, "--metrics-file FILE (the alert: node exporter's textfile dir)")
    unit_dir = Path(opts.unit_dir)
    name = unit_name(dep.name)
    runs = commands(opts, inv, password, metrics)
    unit_dir.mkdir(parents=True, exist_ok=True)
    database_password = [Path(opts.database_password_file).absolute()] if opts.database_password_file else []
    refuse_user_writable(used_files(dep, inv, password, metrics, unit_dir) + database_password)
    service, timer = unit_dir / f"{name}.service", unit_dir / f"{name}.timer"
    service.write_text(service_unit(dep.name, runs, getpass.getuser()))
    timer.write_text(timer_unit(dep.name, _calendar(opts.on_calendar)))
    for unit in (service, timer):
        unit.chmod(0o644)
        say(f"wrote {unit}")
    if unit_dir == Path(SYSTEM_DIR):
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", timer.name)
        say(f"enabled and started {timer.name}")
    else:
        say(f"{unit_dir} is not {SYSTEM_DIR}: the timer is not enabled (check: systemd-analyze verify {service})")
    return {"service": str(service), "timer": str(timer), "commands": runs}


def _installed(unit_dir: Path) -> list[Path]:
    return sorted(unit_dir.glob(f"{PREFIX}*.timer")) if unit_dir.is_dir() else []


def status(opts: TaskOptions, say) -> dict:
    """Every maasops timer in the unit directory: when it runs next, how its last run ended."""
    rows = []
    for timer in _installed(Path(opts.unit_dir)):
        service = timer.with_suffix(".service").name
        t = _props(timer.name, "ActiveState", "NextElapseUSecRealtime", "LastTriggerUSec")
        s = _props(service, "Result", "ExecMainStatus", "ActiveState")
        rows.append({"timer": timer.name, "timer state": t.get("ActiveState", "?"),
                     "next run": t.get("NextElapseUSecRealtime", ""), "last run": t.get("LastTriggerUSec", ""),
                     "last result": s.get("Result", "?"), "exit status": s.get("ExecMainStatus", "")})
    say(output.table(rows) if rows else "no maasops schedule is installed")
    return {"timers": rows}


def _props(unit: str, *names: str) -> dict[str, str]:
    proc = _systemctl("show", unit, *(f"--property={n}" for n in names), check=False)
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def remove(opts: TaskOptions, say) -> dict:
    """Stop and disable every maasops timer in the unit directory (or the inventory's only), delete its units."""
    unit_dir = Path(opts.unit_dir)
    timers = _installed(unit_dir)
    if opts.inventory:
        timers = [t for t in timers if t.stem == unit_name(inventory.load(opts.inventory).name)]
    for timer in timers:
        if unit_dir == Path(SYSTEM_DIR):
            _systemctl("disable", "--now", timer.name, check=False)
        for unit in (timer, timer.with_suffix(".service")):
            unit.unlink(missing_ok=True)
            say(f"removed {unit}")
    if timers and unit_dir == Path(SYSTEM_DIR):
        _systemctl("daemon-reload")
    return {"removed": [t.name for t in timers]}

