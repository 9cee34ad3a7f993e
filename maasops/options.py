"""The one table of command-line options, and the tasks made from it.

Every option is written once, here: its name, default, help and (only where it
helps) a short flag. A short flag means the same in every task and never one of
Fabric's core flags (``-c -d -D -e -f -F -h -H -i -l -p -r -R -S -t -T -V -w``).
Tasks are built from a :class:`TaskSpec` naming the options they take, so a
task's signature, help and the options it passes on cannot drift apart.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path

from invoke import Collection, Exit, Task
from invoke.parser import Argument

from maasops import compression, fleet, stream
from maasops.parts import database
from maasops.restore_plan import LEFTOVER_RUNS
from maasops.results import INTERRUPTED, REFUSED

CORE_SHORT_FLAGS = frozenset("cdDeFfhHilprRStTVw")
HELP_WIDTH = 110


FILE, NEW_FILE, DIRECTORY = "file", "new file", "directory"  # what a path option must name


class OptionError(ValueError):
    """A value an option cannot take; the message names the flag."""


@dataclass(frozen=True)
class Option:
    """One command-line option: what it takes is checked once, when the command line is parsed.

    An int option lies within ``low``..``high``; a text option is never empty and, with ``choices``, one of them;
    ``path`` says what a path option must name: an existing ``FILE``, a ``NEW_FILE`` in an existing directory,
    or an existing ``DIRECTORY``.
    """

    name: str  # the Python name; the flag is --name-with-dashes
    default: object
    help: str
    short: str | None = None
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    path: str | None = None

    @property
    def type(self) -> type:
        """The Python type of the option's value (str for a text option, which may also be None)."""
        return type(self.default) if isinstance(self.default, bool | int) else str

    def parse(self, value: object) -> object:
        """The value as the task gets it, checked (OptionError naming the flag when it cannot be used)."""
        if value is None:  # not given: the table's default (a switch on by default stays on)
            return self.default
        if self.type is bool:
            return bool(value)
        if self.type is int:
            return self._number(value)
        text = str(value)
        if not text.strip() or "\0" in text:
            raise OptionError(f"{self.flag}: an empty value (leave the flag out for its default)")
        if self.choices and text not in self.choices:
            raise OptionError(f"{self.flag} {text[:80]!r}: must be one of {', '.join(self.choices)}")
        if self.path:
            self._check_path(Path(text).expanduser())
        return text

    def _number(self, value: object) -> int:
        text = str(value).strip()
        if not text.lstrip("-").isdigit():
            raise OptionError(f"{self.flag} {text[:80]!r}: not a whole number")
        n = int(text)
        if (self.low is not None and n < self.low) or (self.high is not None and n > self.high):
            raise OptionError(f"{self.flag} {n}: must be from {self.low} to {self.high}")
        return n

    def _check_path(self, p: Path) -> None:
        problem = path_problem(p, self.path)
        if problem:
            raise OptionError(f"{self.flag} {p}: {problem}")

    @property
    def flag(self) -> str:
        """``--the-flag``."""
        return "--" + self.name.replace("_", "-")

    def shown(self) -> str:
        """How help shows the option: ``-b, --backup-dir=VALUE``, ``--[no-]rollback-copy``, ``-P, --parallel=N``."""
        if isinstance(self.default, bool):
            long = "--[no-]" + self.flag[2:] if self.default else self.flag
        else:
            long = self.flag + ("=N" if self.type is int else "=VALUE")
        return (f"-{self.short}, " if self.short else "    ") + long


def path_problem(p: Path, kind: str) -> str | None:
    """Why ``p`` is not what a path option of ``kind`` must name (None when it is)."""
    if kind == FILE and not p.is_file():
        return "not a file" if p.exists() else "no such file"
    if kind == DIRECTORY and not p.is_dir():
        return "not a directory" if p.exists() else "no such directory"
    if kind == NEW_FILE and not p.absolute().parent.is_dir():
        return f"its directory {p.absolute().parent} does not exist"
    return None


OPTIONS: dict[str, Option] = {o.name: o for o in (
    # where the hosts are
    Option("inventory", None, "inventory YAML file (instead of -H; the two together are refused)", "I"),
    Option("lab_dir", None, "lab directory used when neither -H nor --inventory is given (default .lab)"),
    Option("deployment", None, "deployment name for -H runs (default: the inventory's, or 'default')"),
    Option("jump_host", None, "maasops's own: a jump host for -H runs ([user@]host[:port]), like ssh -J / "
                              "ProxyJump; inventories use defaults.gateway, ssh_config its ProxyJump", "j"),
    Option("accept_new_host_keys", False, "trust and record host keys not yet known, where OpenSSH would record "
                                          "them (a changed key is still refused)"),
    Option("parallel", fleet.PARALLEL, "hosts worked on at once", "P", low=1, high=fleet.MAX_PARALLEL),
    # output
    Option("json", False, "print one JSON document on stdout (human text goes to stderr, no progress)"),
    Option("metrics_file", None, "write the run's outcome for the node exporter's textfile collector (.prom)",
           path=NEW_FILE),
    Option("dry_run", False, "print every remote command per host and stop; nothing is touched", "n"),
    # backup
    Option("backup_dir", "backups", "where backup sets are written: <dir>/<deployment>/<UTC time>/<host>/", "b"),
    Option("stop_postgresql", False, "also stop PostgreSQL on the database host while config is archived, as the "
                                     "MAAS doc does; the dump then runs first instead of alongside"),
    Option("exclude_images", False, "MAAS 3.5+: leave image-storage out (there it is not a cache: custom images "
                                    "live only there)"),
    Option("db_only_maas", False, "dump only the MAAS database (pg_dump) even on a dedicated PostgreSQL server"),
    Option("allow_vault", False, "back up although Vault holds MAAS secrets; the set records that they are missing"),
    Option("compress", None, f"{', '.join(compression.CHOICES)} for the dump and the archive (default auto: zstd "
                              "where the host has it, else gzip; none with --repo: restic compresses)",
           choices=compression.CHOICES),
    Option("dump_format", None, "auto, plain or directory: directory is pg_dump -Fd with parallel jobs, written on "
                                "the database host first (default auto: directory from "
                                f"{database.DIRECTORY_FROM >> 20} MiB of database, where the host has room)",
           choices=database.FORMATS),
    Option("encrypt_to", None, "age (age1...) or SSH public keys, comma-separated: archives and dumps are encrypted "
                               "as they arrive; keep the identity safe and away from the backups"),
    Option("database_name", None, "the MAAS database's name, when regiond.conf does not say (Vault keeps it)"),
    Option("database_user", None, "the role a network dump or load connects as, when regiond.conf names none "
                                  "(Vault keeps MAAS's database credentials)"),
    Option("database_password_file", None, "file (mode 0600) whose first line is --database-user's password: sent "
                                           "over SSH as the command's PGPASSWORD, never written on the host"),
    Option("database_elsewhere", False, "the deployment's database is backed up another way: a set without it is "
                                        "made (and verified, restored) anyway, and records this"),
    Option("dump_from", None, "the region whose database is the deployment's, when the regions disagree"),
    Option("idle_timeout", int(stream.IDLE_TIMEOUT), "seconds a host may send nothing before its stream is stopped",
           low=1, high=86400),
    Option("max_stream_gib", stream.CEILING_GIB, "the most one stream from a host may carry, in GiB, whatever the "
                                                 "host's own sizes say (the laptop's ceiling)", low=1, high=1 << 20),
    Option("sign_key", None, "SSH private key (or public key, with the private one in ssh-agent) that signs the "
                             "set (default: the inventory's signing_key, then ~/.ssh/id_ed25519)", path=FILE),
    # verify and restore
    Option("backup_set", None, "the set: backups/<deployment>/<UTC time> (with --repo: the set in it, as --set)",
           "s"),
    Option("decrypt_key", None, "age identity file (or SSH private key) that decrypts an encrypted set", path=FILE),
    Option("allowed_signers", None, "OpenSSH allowed_signers file that says whose signatures to trust "
                                    "(default: ~/.config/maasops/allowed_signers, or the inventory's)", path=FILE),
    Option("trust_unsigned", False, "accept a set that is not signed, if it is from before signing (format 1; a "
                                    "later set without its signature is refused): NOTHING then proves who made it"),
    Option("map", None, "restore onto other hosts: old=new,old2=new2 (default: each archive to its own host)", "m"),
    Option("allow_upgrade", False, "restore onto a newer MAAS major.minor and let dbupgrade migrate (never older)"),
    Option("maas_url", None, "re-point every rack whose maas_url differs to this region URL (a DR site)"),
    Option("database_host", None, "rewrite database_host in the regiond.conf of regions that use a remote database"),
    Option("rollback_copy", True, "keep each target's current database for rollback (renamed: no copy is made)"),
    Option("skip_database", False, "restore files only; load the database yourself (a separate or shared server)"),
    Option("rollback", False, "undo the last restore of this set: put back what it moved aside and the database it "
                              "replaced"),
    Option("keep", LEFTOVER_RUNS, "restores whose leftovers (aside copies, kept databases) stay on each host "
                                  "(at least 1: the last restore's are what --rollback puts back)", low=1, high=1000),
    # plan
    Option("what", None, "the operation to plan: backup or restore", choices=("backup", "restore")),
    # drill and lab
    Option("keep_lab", False, "leave both lab sites up afterwards"),
    Option("regions", 1, "region controllers per lab site", low=1, high=8),
    Option("racks", 2, "rack controllers per lab site", low=0, high=16),
    Option("profile", None, "MAAS per host: a lab profile (docs/lab.md lists them; an unknown one is refused, "
                            "naming the known), or P,host=P2,... per host (default deb-3.5; the drill's "
                            "deb-3.5,rack1=snap-3.5)"),
    Option("db_mb", 8, "megabytes of raw dump seeded into the lab's maasdb", low=1, high=65536),
    Option("dedicated_db", False, "put the database on its own host (db1), used by every region over the network"),
    Option("combined", False, "make region1 a region+rack controller"),
    Option("offsite", False, "drill through the lab's off-site restic repository (sftp to the source's bastion): "
                             "the set streams into it and the restore streams it back out"),
    Option("direct", False, "let the laptop reach lab hosts directly too (default: only through the bastion)"),
    # a restic repository (docs/keeping-backups.md)
    Option("repo", None, "a restic repository to keep sets in: a path, sftp:host:/path (reached with the "
                         "fleet's ssh_config), rest:..., s3:... (see docs/keeping-backups.md)"),
    Option("repo_password_file", None, "file holding the repository's password (default $RESTIC_PASSWORD_FILE); "
                                       "never the password itself", path=FILE),
    Option("set", None, "the set in --repo: latest (the newest complete), TIME or DEPLOYMENT/TIME"),
    Option("keep_daily", 7, "sets kept: the newest of each of this many days (restic's --keep-daily)",
           low=0, high=10000),
    Option("keep_weekly", 4, "sets kept: the newest of each of this many weeks", low=0, high=10000),
    Option("keep_monthly", 6, "sets kept: the newest of each of this many months", low=0, high=10000),
    Option("read_data_subset", None, "restic check also reads this part of the data back: n/t, x% or a size"),
    Option("action", None, "install, status or remove", choices=("install", "status", "remove")),
    Option("on_calendar", "daily", "when the timer runs the backup (systemd OnCalendar=, e.g. daily, *-*-* 02:30)"),
    Option("unit_dir", "/etc/systemd/system", "where schedule writes its systemd units"),
)}


# Option groups several commands take.
HOSTS = ("inventory", "lab_dir", "deployment", "jump_host", "accept_new_host_keys", "parallel")
BACKUP = ("backup_dir", "stop_postgresql", "exclude_images", "db_only_maas", "dump_format", "allow_vault", "compress",
          "encrypt_to", "database_name", "database_user", "database_password_file", "database_elsewhere", "dump_from",
          "idle_timeout", "max_stream_gib", "sign_key")
TRUST = ("allowed_signers", "trust_unsigned", "decrypt_key", "database_elsewhere")
RESTORE = ("map", "allow_upgrade", "maas_url", "database_host", "database_user", "database_password_file",
           "rollback_copy", "skip_database", "keep") + TRUST
REPO = ("repo", "repo_password_file", "inventory", "lab_dir", "accept_new_host_keys")
FROM_REPO = REPO + ("set", "deployment")
RETENTION = ("keep_daily", "keep_weekly", "keep_monthly")


def help_text(name: str, doc: str, option_names: tuple[str, ...], positional: tuple[str, ...],
              binary: str = "maasops") -> str:
    """A task's help as ``maasops TASK --help`` (or ``fab TASK --help`` in the checkout) prints it."""
    usage = " ".join([binary, "[core options]", name, *(f"[{p.upper()}]" for p in positional), "[options]"])
    lines = [f"Usage: {usage}", "", doc.strip(), "", "Options:"]
    for n in option_names:
        o = OPTIONS[n]
        default = f" (default {o.default})" if o.default not in (None, False, True) else ""
        default += f" ({o.low} to {o.high})" if o.low is not None else ""
        lines += textwrap.wrap(o.help + default, HELP_WIDTH, initial_indent=f"  {o.shown():34} ",
                               subsequent_indent=" " * 37, break_on_hyphens=False)
    lines += ["", f"Core options ({binary} --help): -H hosts, -S ssh_config, -i key file, --prompt-for-sudo-password,",
              "-t connect timeout, -q quiet, -v verbose.  Exit codes: 0 ok, 1 some hosts failed, 2 refused before",
              "anything was stopped, 3 a partial backup, 10/11/12 repository missing/locked/wrong password,",
              "130 interrupted (docs/command-line.md)."]
    return "\n".join(lines)


class OptionalPositional(Argument):
    """A positional that is no longer wanted once the ``unless`` argument has a value."""

    unless: Argument

    @property
    def value(self) -> object:
        """The value given; '' (not missing) when it was not given but ``unless`` was."""
        given = self._value if self._value is not None else self.default
        return "" if given is None and self.unless.value else given

    @value.setter
    def value(self, arg: str) -> None:
        self.set_value(arg, cast=True)


class OptionTask(Task):
    """An Invoke task whose flags come from :data:`OPTIONS` (no automatic short flags).

    ``positional_unless`` names a flag that, when given, makes the positional optional
    (``verify --repo R --set latest`` names no local set).
    """

    def __init__(self, body: Callable, positional_unless: str | None = None, **kwargs):
        super().__init__(body, auto_shortflags=False, **kwargs)
        self.positional_unless = positional_unless

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        """Invoke's arguments; a positional is :class:`OptionalPositional` when ``positional_unless`` is set."""
        args = super().get_arguments(ignore_unknown_help)
        if self.positional_unless:
            unless = next(a for a in args if a.name.replace("-", "_") == self.positional_unless)
            for a in args:
                if a.positional:
                    a.__class__, a.unless = OptionalPositional, unless
        return args

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict:
        """Invoke's options for one argument, with the table's short flag."""
        opts = super().arg_opts(name, default, taken_names)
        option = OPTIONS.get(name)
        if option and option.short:
            opts["names"] = [*opts["names"], option.short]
        if option and option.type is int:
            opts["kind"] = str  # cast by Option.parse, whose refusal names the flag (Invoke's int() does not)
        return opts


@dataclass(frozen=True)
class TaskOptions:
    """What every task's options have: how its outcome is reported. Each task's own class adds its options."""

    json: bool = False
    metrics_file: str | None = None


def options_class(name: str, option_names: tuple[str, ...]) -> type[TaskOptions]:
    """A frozen dataclass with one typed field per option (named ``<Task>Options``), its defaults the table's."""
    cls_name = "".join(w.capitalize() for w in name.replace(".", "-").split("-")) + "Options"
    specs = [(n, OPTIONS[n].type if OPTIONS[n].default is not None else OPTIONS[n].type | None,
              field(default=OPTIONS[n].default)) for n in option_names]
    cls = make_dataclass(cls_name, specs, bases=(TaskOptions,), frozen=True)
    cls.__module__ = __name__
    return cls


@dataclass(frozen=True)
class TaskSpec:
    """A task: its name, what it does (the first line is what --list shows), its options."""

    name: str
    doc: str
    options: tuple[str, ...]
    positional: tuple[str, ...] = ()
    positional_unless: str | None = None  # an option that, when given, makes the positional optional
    check: Callable[[TaskOptions], None] | None = None  # what no one option can say (OptionError naming the flags)
    options_class: type[TaskOptions] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(dict.fromkeys(o for o in self.options if o not in self.positional)))
        object.__setattr__(self, "options_class", options_class(self.name, self.positional + self.options))

    def parse(self, given: dict[str, object]) -> TaskOptions:
        """The task's options from what the command line gave, each checked (OptionError naming the flag)."""
        values = {}
        for n in self.positional + self.options:
            value = given.get(n)
            if n in self.positional and value == "":  # OptionalPositional: not needed, as positional_unless was given
                value = None
            values[n] = OPTIONS[n].parse(value)
        opts = self.options_class(**values)
        if self.check:
            self.check(opts)
        return opts

    def help(self, binary: str = "maasops", name: str | None = None) -> str:
        """This task's help text (``name``: as the collection calls it, e.g. ``lab.up``)."""
        return help_text(name or self.name, self.doc, self.positional + self.options, self.positional, binary)


HELP_WORDS = ("-h", "--help")


def make_task(spec: TaskSpec, body: Callable[..., None], post: list | None = None, typed: bool = False) -> OptionTask:
    """An Invoke task calling ``body(c, options)`` (``typed``: the task's :class:`TaskOptions`) or
    ``body(c, **options)``, its signature, help and flags from the table.

    The options are checked before the body runs: a value that cannot work is refused with exit code 2 and a
    message naming the flag. Ctrl-C that reaches the task ends the command with exit code 130 (Invoke's own is 1).
    """
    def call(c, **kwargs) -> None:
        try:
            opts = spec.parse(kwargs)
        except OptionError as exc:
            raise Exit(f"maasops {spec.name}: {exc}", code=REFUSED) from None
        try:
            if typed:
                body(c, opts)
            else:
                body(c, **{f.name: getattr(opts, f.name) for f in fields(opts) if f.name in kwargs})
        except KeyboardInterrupt:
            raise Exit("interrupted", code=INTERRUPTED) from None
    params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=OPTIONS[n].default)
               for n in spec.positional + spec.options]
    call.__signature__ = inspect.Signature(params)
    call.__name__ = spec.name.replace("-", "_")
    call.__doc__ = spec.doc
    help_ = {OPTIONS[n].flag[2:]: OPTIONS[n].help for n in spec.positional + spec.options}
    task = OptionTask(call, spec.positional_unless, name=spec.name, positional=list(spec.positional), help=help_,
                      post=post or [])
    task.spec = spec
    return task


def help_asked(argv: Sequence[str], ns: Collection) -> str | None:
    """The task whose help a command line asks for: ``-h``/``--help`` anywhere, and a task named (else None).

    Invoke's parser may take a ``-h`` for a positional's or option's value (``fab verify -h SET``);
    the command line as typed is what counts. A completion request is never a help request.
    """
    if "--complete" in argv or not any(a in HELP_WORDS for a in argv):
        return None
    names = set(ns.task_names) | {alias for aliases in ns.task_names.values() for alias in aliases}
    return next((a for a in argv if a in names), None)


def task_help(ns: Collection, name: str, binary: str) -> str:
    """The help of task ``name`` of ``ns`` as ``binary`` prints it."""
    return ns[name].spec.help(binary, name)
