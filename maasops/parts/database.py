"""The database part of a set: what to back up, how to check it offline, how to restore it, what undoes it.

What to back up (:func:`backup_steps`): one region dumps the deployment's database
(:func:`dump_owners`), live, checking first that PostgreSQL answers. How to check it offline
(:func:`check`): the dump is read as its kind is read (:func:`reader`) and must be complete
(:func:`completion`). How to restore it (:func:`restore_steps`): uploaded (a directory dump
unpacked and listed before anything stops), the current database set aside, the set's dump loaded.
What undoes it: the load's undo puts the kept database back (:func:`put_back`), from what the
host recorded; the rollback runs the same command.

Dumps, by kind. A plain dump (``pg_dump``, ``roles+pg_dump``, an old set's ``pg_dumpall``) is SQL that
streams straight from ``pg_dump`` and loads with ``psql``; it is complete when it ends with
PostgreSQL's completion line. A directory dump (``pg_dump-Fd``, ``roles+pg_dump-Fd``) is
``pg_dump -Fd -Z 0 -j N`` written into a private directory on the database host, then
sent as an uncompressed tar (the set's codec compresses it, as it does a plain dump)::

    roles.sql        pg_dumpall --roles-only (roles+pg_dump-Fd only), ending with its completion line
    db/              the directory pg_dump wrote
    db/<id>.dat      one per table's data; blobs.toc and blob_<oid>.dat (large objects, PostgreSQL up to 16),
                     blobs_<id>.toc (17+)
    db/toc.dat       its table of contents, last: pg_dump writes it when all else is written, and a tar whose
                     last member is a whole toc.dat holds a finished dump

Nothing else may be in it: no other name, no link, no device (:func:`read_directory`),
checked as the set arrives, by ``verify`` and as the restore uploads it. A restore unpacks it
into its run directory as PostgreSQL's superuser, lists it with ``pg_restore -l`` and checks
every table's data file is there, all before anything stops, then loads it with
``pg_restore -j N --create``.

benchmarks/parallel_dump.py measures its dump + load against the plain dump's, for both kinds of
MAAS database (benchmarks/RESULTS.md, "Evaluation"); benchmarks 6 and the scaling curve measure
restores with it. ``--dump-format auto`` takes it for a local database of DIRECTORY_FROM bytes
or more, where the host has room for it.

Setting aside and loading. A restore sets aside the database it replaces, for rollback. On a server the loading
host runs itself (PostgreSQL's superuser is at hand) that costs nothing: the
database is renamed (``ALTER DATABASE ... RENAME``, after ending its sessions)
and the dump creates a fresh one; putting it back renames it back, and pruning
drops old copies. The roles, whose passwords the dump's roles part sets, are
saved first and put back with it. On a server reached over the network (or
maas-test-db) the MAAS role cannot rename databases: the current database is
dumped into the run directory instead, and loaded again to put it back.

Names (databases) reach SQL as psql variables, quoted by psql (``:"db"`` as an
identifier, ``:'db'`` as a literal), never spliced into it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from fabric import Connection

from maasops import backupset, channel, compression, hostpaths, layouts, probe, secretfile, sqlscan, stream, tarstream
from maasops import manifest as mf
from maasops.backupset import SetFiles
from maasops.command import Cmd, Q, Word, group
from maasops.compression import Codec, codec, compressed
from maasops.errors import Unsafe
from maasops.hostfiles import receive, record, recorded
from maasops.hostpaths import DUMP_ROOT, UPLOAD_DUMP, WORK_ROOT
from maasops.manifest import HostManifest, dump_file
from maasops.parts import Read
from maasops.plan import Phase, Step, StepId
from maasops.probe import DatabaseFacts, HostFacts, conf_value

if TYPE_CHECKING:
    from maasops.backup_plan import BackupOptions

KEPT_PREFIX = "maasops_kept_"
# psql errors a load prints that change nothing: the roles part meets roles that exist; a pg_dumpall -c
# (sets from before format 2) cannot drop the roles and databases a kept copy still uses.
HARMLESS_LOAD_ERRORS = ('role "[^"]*" already exists', "current user cannot be dropped",
                        'role "[^"]*" cannot be dropped because some objects depend on it',
                        'database "[^"]*" does not exist')


class PasswordFileError(ValueError):
    """The operator's database password file cannot be used (missing, empty, readable by others)."""


def password(path: str | None) -> bytes | None:
    """The first line of the operator's database password file (``--database-password-file``), which a step
    gets as its PGPASSWORD over the SSH channel; None for no file. The file must be its owner's alone."""
    if path is None:
        return None
    p = Path(path).expanduser()
    try:
        with secretfile.private_file(p, "database password file").open("rb") as f:
            line = f.readline(4096).rstrip(b"\r\n")
    except secretfile.NotPrivate as exc:
        raise PasswordFileError(str(exc)) from None
    except OSError as exc:
        raise PasswordFileError(f"database password file {p}: {exc.strerror}") from None
    if not line or b"\0" in line:
        raise PasswordFileError(f"database password file {p} holds no password on its first line")
    return line


@dataclass(frozen=True)
class Credentials:
    """The role a network dump or load connects as and the local file holding its password, given by the operator
    where regiond.conf names none (Vault keeps MAAS's database credentials)."""

    user: str
    password_file: str


def operator_credentials(location: str, conf_user: str, given: Credentials | None) -> Credentials | None:
    """The operator's credentials where a connection needs them: to a server over the network (``location``
    remote) whose role regiond.conf does not name (``conf_user`` empty). None: regiond.conf's are used."""
    return given if location == "remote" and not conf_user else None


@dataclass(frozen=True)
class Server:
    """How the loading host reaches the database server."""

    how: str  # local | network | maas-test-db
    host: str
    port: int
    user: str
    conf: str | None = None  # regiond.conf on the loading host (network: it holds the password)
    password_file: str | None = None  # network: the operator's, the steps' PGPASSWORD (regiond.conf names none)

    def client(self, program: str, *args: str | Cmd, unprivileged: bool = False) -> Cmd:
        """``program`` (psql, pg_dump, pg_dumpall) connected to this server; as the superuser on a local one.

        ``unprivileged``: a network or maas-test-db client runs as the OS user nobody, never root (a dump's
        bytes reach it: what psql could run would run as nobody)."""
        if self.how == "local":
            sock = Cmd("-h", Q(self.host)) if self.host.startswith("/") else Cmd()
            return Cmd("runuser -u", Q(layouts.PG_SUPERUSER), "--", program, "-p", Q(str(self.port)), sock, *args)
        who = Cmd(LOAD_ENV, "runuser -u", Q(NOBODY), "--") if unprivileged else Cmd()
        if self.how == "maas-test-db":
            return Cmd(who, program, "-h", Q(self.host), "-U", Q(self.user), *args)
        password = Cmd() if self.password_file else \
            Word("PGPASSWORD=\"$(", conf_value(self.conf, "database_pass"), ")\"")
        return Cmd(password, who, program, "-h", Q(self.host), "-p", Q(str(self.port)), "-U", Q(self.user), *args)

    @property
    def superuser(self) -> bool:
        """True when this host can rename and drop databases (a local server)."""
        return self.how == "local"


def sql(server: Server, script: str, database: str = "postgres", **variables: str) -> Cmd:
    """Run our own SQL ``script`` on ``server``; psql variables (``:'name'``, ``:"name"``) carry the values."""
    args = [Cmd("-v", Q(f"{k}={v}")) for k, v in variables.items()]
    return Cmd("printf '%s\\n'", Q(script), "|",
               server.client("psql", "-X -Atq -v ON_ERROR_STOP=1", *args, "-d", Q(database)))


TERMINATE = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE datname IN (:'db', :'kept') AND pid <> pg_backend_pid() \\g /dev/null")
RENAME_IF_EXISTS = TERMINATE + """
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') AS have \\gset
\\if :have
ALTER DATABASE :"db" RENAME TO :"kept";
\\echo kept
\\endif
"""
PUT_BACK = """
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'kept') AS have \\gset
\\if :have
""" + TERMINATE + """
DROP DATABASE IF EXISTS :"db";
ALTER DATABASE :"kept" RENAME TO :"db";
\\endif
"""
DROP = TERMINATE + '\nDROP DATABASE IF EXISTS :"db";\n'
OLD_KEPT = (f"FROM pg_database WHERE left(datname, {len(KEPT_PREFIX)}) = '{KEPT_PREFIX}' "
            "ORDER BY datname DESC OFFSET :keep")
PRUNE = f"SELECT datname {OLD_KEPT};\nSELECT format('DROP DATABASE %I', datname) {OLD_KEPT} \\gexec\n"


def kept_name(run_id: str) -> str:
    """The name a restore gives the database it replaces."""
    return f"{KEPT_PREFIX}{run_id}".lower()


def loaded(source: Cmd, psql: Cmd, log: str, what: str) -> Cmd:
    """``source | psql`` with psql's errors in ``log``; fails on any error but HARMLESS_LOAD_ERRORS, quoting them."""
    harmless = Cmd(*(Cmd("-e", Q(e)) for e in HARMLESS_LOAD_ERRORS))
    return Cmd("umask 077;", source, "|", psql,
               "2>", Q(log), "; rc=$?; errors=$(grep 'ERROR:'", Q(log), "| grep -vE", harmless, "| head -n 3);",
               "[ \"$rc\" = 0 ] && [ -z \"$errors\" ] || { echo \"loading", Q(what), "failed (psql exit $rc): "
               "$errors\" >&2; exit 1; }")


def load(server: Server, dump: str, how: Codec, database: str, log: str) -> Cmd:
    """Load a plain SQL dump maasops took itself on this host (a rollback copy) into ``server``; fail on any
    error but the harmless ones (HARMLESS_LOAD_ERRORS). A local server loads as the superuser into
    ``postgres``; a network one as the MAAS role into the database itself, psql running as nobody.

    A set's dump is loaded by :func:`load_set_dump` instead.
    """
    target = "postgres" if server.superuser else database
    psql = server.client("psql", "-X -q -o /dev/null -f - -d", Q(target), unprivileged=True)
    return loaded(Cmd(how.decompress, Q(dump)), psql, log, dump)


# On a local server a set's database part is loaded by this login: a member of the database's owner and nothing
# more (no superuser), made for the load with a random password and dropped after it.
LOADER = "maasops_loader"
NOBODY = "nobody"  # the OS user psql runs as for a set's dump: it needs no file, its input is a pipe
# A dump's client reads it as sqlscan did: UTF-8 (no encoding in which a backslash hides in a character) and
# standard_conforming_strings on from the first line (no backslash escapes in '' strings, whatever the server says).
LOAD_ENV = "PGCLIENTENCODING=UTF8 PGOPTIONS='-c standard_conforming_strings=on'"
PREPARE = """DROP ROLE IF EXISTS :"loader";
CREATE ROLE :"loader" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD :'pw'
    IN ROLE :"owner";
CREATE DATABASE :"db" OWNER :"owner" TEMPLATE template0 ENCODING 'UTF8';
"""
FINISH = 'REASSIGN OWNED BY :"loader" TO :"owner";\nDROP OWNED BY :"loader";\nDROP ROLE :"loader";\n'
# A --create dump's database part: the lines after its header's \connect (the scan allowed one, there only).
AFTER_CONNECT = "go { print } /^\\\\connect / { go = 1 }"
# A roles+pg_dump dump's roles part: up to pg_dumpall's completion line (read to the end: no SIGPIPE upstream).
ROLES_PART = f'!done {{ print }} $0 == "{layouts.DUMPALL_COMPLETE_LINE}" {{ done = 1 }}'


def new_password() -> Cmd:
    """``pw``: a random password, made on the host (never on a command line)."""
    return Cmd("pw=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \\n') && [ -n \"$pw\" ]")


def prepare_owner_load(server: Server, database: str, owner: str) -> Cmd:
    """As the superuser, maasops's own statements: the LOADER login (password ``$pw``) and the empty database,
    owned by ``owner``, the dump's database part is loaded into."""
    variables = Cmd(*(Cmd("-v", Q(f"{k}={v}")) for k, v in (("loader", LOADER), ("owner", owner), ("db", database))))
    return Cmd("{ printf '\\\\set pw %s\\n' \"$pw\"; printf '%s\\n'", Q(PREPARE), "; } |",
               server.client("psql", "-X -Atq -v ON_ERROR_STOP=1", variables, "-d postgres"))


def finish_owner_load(server: Server, database: str, owner: str) -> Cmd:
    """Drop the LOADER login, what it still owns going to ``owner``."""
    return sql(server, FINISH, database, loader=LOADER, owner=owner)


def loader_client(server: Server, program: str, *args: str | Cmd, os_user: str = NOBODY) -> Cmd:
    """``program`` connected to the local ``server`` as the LOADER (password ``$pw``), run as ``os_user``."""
    return Cmd("PGPASSWORD=\"$pw\"", LOAD_ENV, "runuser -u", Q(os_user), "--", program, "-h localhost -p",
               Q(str(server.port)), "-U", Q(LOADER), *args)


def load_set_dump(server: Server, dump: str, how: Codec, database: str, owner: str, roles: bool, log: str) -> Cmd:
    """Load a set's plain dump (checked on the laptop by :mod:`maasops.sqlscan` as it went up) into ``server``.

    Local: the roles part (``roles``) as the superuser, only the lines :func:`sqlscan.role_filter` lets
    through; the database created by maasops itself; the database part (after the dump's ``\\connect``) by
    the LOADER, a member of ``owner``, from psql running as nobody. Network and maas-test-db: the whole
    dump as the MAAS role, psql running as nobody. psql always ``-X -v ON_ERROR_STOP=1``.
    """
    psql = "-X -q -v ON_ERROR_STOP=1 -o /dev/null -f - -d"
    source = Cmd(how.decompress, Q(dump))
    if not server.superuser:
        return loaded(source, server.client("psql", psql, Q(database), unprivileged=True), log, dump)
    steps = []
    if roles:
        steps += [loaded(Cmd(source, "| awk", Q(ROLES_PART), "|", sqlscan.role_filter()),
                          server.client("psql", "-X -q -o /dev/null -f - -d postgres"), f"{log}.roles",
                          f"{dump} (roles)"), "&&"]
    part = Cmd(source, "| awk", Q(AFTER_CONNECT))
    return Cmd(*steps, owner_load(server, database, owner, loaded(part, loader_client(server, "psql", psql,
                                                                                           Q(database)), log, dump)))


def owner_load(server: Server, database: str, owner: str, load_command: Cmd) -> Cmd:
    """``load_command`` (connecting with :func:`loader_client`) between :func:`prepare_owner_load` and
    :func:`finish_owner_load`; the LOADER is dropped however the load ends."""
    return Cmd("(", new_password(), "&&", prepare_owner_load(server, database, owner), "&& { (", load_command,
               "); rc=$?; ", finish_owner_load(server, database, owner), "|| rc=1; exit $rc; } )")


def _roles_file(run_dir: str) -> str:
    return f"{run_dir}/roles-before.sql"


def _saved_file(run_dir: str) -> str:
    return f"{run_dir}/pre-restore.sql.gz"


def set_aside(server: Server, database: str, run_id: str, run_dir: str, state: str) -> Cmd:
    """Set aside the database a restore replaces: renamed (local) or dumped into ``run_dir`` (network); recorded."""
    if server.superuser:
        kept, roles = kept_name(run_id), _roles_file(run_dir)
        # The record comes first: a restore killed between it and the rename leaves a record that says more,
        # never less (putting back renames only a kept database that exists).
        return Cmd("umask 077 &&", server.client("pg_dumpall", "--roles-only >", Q(roles)), "&&",
                   record(state, f"roles-before {roles}"), "&&", record(state, f"kept-db {kept} {database}"),
                   "&& out=$(", sql(server, RENAME_IF_EXISTS, db=database, kept=kept), ") && case $out in *kept*)",
                   ";; *)", record(state, f"new-db {database}"), ";; esac")
    saved = _saved_file(run_dir)
    return Cmd("umask 077 &&", server.client("pg_dump", "--clean --if-exists", Q(database)), "| gzip -1 >", Q(saved),
               "&&", record(state, f"saved-db {saved}"))


def put_back(server: Server, database: str, run_id: str, run_dir: str, state: str) -> Cmd:
    """Put back what :func:`set_aside` set aside, by what the host recorded (nothing, when it recorded nothing)."""
    done = record(state, "db-put-back")
    if server.superuser:
        kept, roles = kept_name(run_id), _roles_file(run_dir)
        reload_roles = Cmd("if", recorded(state, f"roles-before {roles}"), "; then",
                           load(server, roles, codec("none"), "postgres", f"{run_dir}/roles-back.log"), "; fi")
        # new-db: there was none to keep, the one there now is the restore's. kept-db: rename it back, if the
        # rename happened (a killed restore may have recorded it and stopped).
        return Cmd("if", recorded(state, "db-put-back"), "; then :; elif",
                   recorded(state, f"new-db {database}"), "; then",
                   sql(server, DROP, db=database, kept=kept), "&&", reload_roles, "&&", done,
                   "; elif", recorded(state, f"kept-db {kept} {database}"), "; then",
                   sql(server, PUT_BACK, db=database, kept=kept), "&&", reload_roles, "&&", done, "; fi")
    saved = _saved_file(run_dir)
    return Cmd("if", recorded(state, "db-put-back"), "; then :; elif", recorded(state, f"saved-db {saved}"), "; then",
               load(server, saved, codec("gzip"), database, f"{run_dir}/put-back.log"), "&&", done, "; fi")


def prune(server: Server, leftover_runs: int) -> Cmd:
    """Drop kept databases of older restores, all but the newest ``leftover_runs``; print each one dropped."""
    return Cmd(sql(server, PRUNE, keep=str(int(leftover_runs))), "| sed 's/^/dropped kept database /'")
FORMATS = ("auto", "plain", "directory")  # --dump-format
DIRECTORY_FROM = 256 << 20  # auto: a local database this large (pg_database_size) or larger gets a directory dump
ROOM = 2  # the host must have this many times the database's size free: COPY writes bytea as hex
MAX_JOBS = 4  # pg_dump/pg_restore jobs: the host's cores, at most this (each is one more database session)
STALE_MINUTES = 720  # a dump directory this old was left by a killed backup: the next one removes it
ROLES_FILE = "roles.sql"
DIRECTORY = "db"
TOC = f"{DIRECTORY}/toc.dat"
COMPLETE = "directory dump complete: toc.dat and only a directory dump's files"
REFUSED = "holds what a restore must not run: "
# The names pg_dump -Fd writes: postgresql src/bin/pg_dump/pg_backup_directory.c @ REL_15 and REL_17 (toc.dat,
# "%d.dat", "blob_%u.dat", blobs.toc; REL_17 "blobs_%d.toc"); toc.dat is written when the archive closes.
DATA_FILE = re.compile(r"^db/(toc\.dat|[0-9]+\.dat|blob_[0-9]+\.dat|blobs(_[0-9]+)?\.toc)$")
JOBS = Cmd("j=$(nproc 2>/dev/null); case $j in ''|*[!0-9]*) j=1;; esac; [ \"$j\" -le", str(MAX_JOBS), "] || j=" +
           str(MAX_JOBS), ";")


def is_directory(kind: str) -> bool:
    """True for the directory-format kinds."""
    return kind in mf.DIRECTORY_DUMP_KINDS


def has_roles(kind: str) -> bool:
    """True when a dump of ``kind`` also sets the server's roles (and their passwords)."""
    return kind in mf.ROLE_DUMP_KINDS


def completion(kind: str) -> str:
    """What :func:`reader` returns first for a complete dump of ``kind``."""
    if is_directory(kind):
        return COMPLETE
    return layouts.DUMPALL_COMPLETE_LINE if kind == "pg_dumpall" else layouts.DUMP_COMPLETE_LINE


def problem(kind: str, verdict: str) -> str:
    """What is wrong with a dump of ``kind`` whose reader said ``verdict``, in words (after "dump ")."""
    if verdict.startswith(REFUSED):
        return verdict[:240]
    return f"is incomplete ({verdict[:120] if is_directory(kind) else f'last line {verdict[:60]!r}'})"


def scanner(kind: str, how: str) -> sqlscan.Scanner:
    """The check of a plain dump of ``kind`` taken ``how`` (a local server's is a ``--create`` dump)."""
    return sqlscan.Scanner(roles=has_roles(kind), create=how == "local")


def read_plain(src: BinaryIO, compress: str, limit: int | None, check: sqlscan.Scanner) -> tuple[str, str, int, int]:
    """A plain dump read from ``src`` (:func:`backupset.read_dump`) and checked by ``check`` on the way: the verdict is
    its last line, or REFUSED and the line it must not load."""
    refused: list[str] = []

    def feed(chunk: bytes) -> None:
        if not refused:
            try:
                check.feed(chunk)
            except sqlscan.Refused as exc:
                refused.append(str(exc))
    got = backupset.read_dump(src, compress, limit, feed)
    if not refused:
        try:
            check.close()
        except sqlscan.Refused as exc:
            refused.append(str(exc))
    return (f"{REFUSED}{refused[0]}" if refused else got[0]), *got[1:]


def reader(kind: str, how: str) -> Callable[[BinaryIO, str, int | None], tuple[str, str, int, int]]:
    """How a dump of ``kind`` taken ``how`` is read: ``(src, compress, limit) -> (verdict, sha256, size, plain
    size)``; the verdict is :func:`completion` for a complete dump that holds only what a restore may load."""
    if is_directory(kind):
        return lambda src, compress, limit=None: read_directory(src, compress, limit, has_roles(kind))
    return lambda src, compress, limit=None: read_plain(src, compress, limit, scanner(kind, how))


def _member_problem(m: tarstream.Header, roles: bool, seen: set[str]) -> str | None:
    name = m.name
    seen.add(name)
    if name == DIRECTORY:
        return None if m.kind == "dir" else f"{DIRECTORY!r} is not a directory"
    if name == ROLES_FILE and roles or DATA_FILE.match(name):
        return None if m.kind == "file" else f"{name!r} is not a regular file"
    return f"{name[:80]!r} is not a file a directory dump holds"


def read_directory(src: BinaryIO, compress: str, limit: int | None = None,
                   roles: bool = True) -> tuple[str, str, int, int]:
    """A directory dump's tar read from ``src``, in one pass: (verdict, sha256 and size of the bytes read, tar size).

    The verdict is COMPLETE, or the first thing wrong: a member no directory dump holds, a
    link or device, a name twice, no toc.dat, roles.sql cut short. Past ``limit`` bytes of tar
    that compress like no real dump it raises TooBig.
    """
    raw = backupset.HashingReader(src)
    buffered = io.BufferedReader(raw, backupset.CHUNK)
    plain = backupset.CountingReader(backupset.BoundedReader(compression.reader(buffered, compress), limit,
                                                             lambda: raw.size))
    problem, seen, roles_last = None, set(), ""
    try:
        tar = tarstream.TarReader(io.BufferedReader(plain, backupset.CHUNK))
        for m in tar:
            after_toc = TOC in seen
            problem = problem or _member_problem(m, roles, seen) or (
                f"{m.name[:80]!r} follows db/toc.dat, which pg_dump writes last" if after_toc else None)
            if problem is None and m.name == ROLES_FILE:
                verdict = read_plain(tar, "none", None, sqlscan.Scanner(only_roles=True))[0]
                problem = f"{REFUSED}roles.sql: {verdict.removeprefix(REFUSED)}" if verdict.startswith(REFUSED) \
                    else None
                roles_last = verdict
    except tarstream.Malformed as exc:
        problem = problem or f"not a complete tar ({exc})"
    while plain.read(backupset.CHUNK):
        pass
    while buffered.read(backupset.CHUNK):
        pass
    if problem is None and TOC not in seen:
        problem = "no db/toc.dat: pg_dump did not finish"
    if problem is None and roles and ROLES_FILE not in seen:
        problem = "no roles.sql: the roles were not dumped"
    if problem is None and roles and roles_last != layouts.DUMPALL_COMPLETE_LINE:
        problem = f"roles.sql is cut short (last line {roles_last[:60]!r})"
    return problem or COMPLETE, raw.digest.hexdigest(), raw.size, plain.size


def inspector(kind: str, how: str, compress: str) -> Callable[[BinaryIO], str]:
    """An upload inspector for a dump: Unsafe unless a directory dump's members are all ones it holds, and
    a plain dump (a directory dump's roles.sql) holds nothing a restore must not run (:mod:`maasops.sqlscan`)."""
    def check(src: BinaryIO) -> str:
        if is_directory(kind):
            verdict = read_directory(src, compress, None, has_roles(kind))[0]
            if verdict != COMPLETE:
                raise Unsafe(f"the database dump: {verdict}")
            return verdict
        try:
            sqlscan.scan(compression.reader(src, compress), scanner(kind, how), backupset.CHUNK)
        except sqlscan.Refused as exc:
            raise Unsafe(f"the database dump {REFUSED}{exc}") from None
        return "checked"
    return check


# The roles the MAAS database's objects belong to (the database, its schemas, tables, functions, types, large
# objects), but superusers and PostgreSQL's predefined roles (pg_*, reserved: pg_database_owner owns the public
# schema): on a server shared with other databases, these are the roles a restore needs.
NEEDED_ROLES_SQL = (
    "SELECT quote_ident(rolname) FROM pg_roles WHERE NOT rolsuper AND rolname !~ '^pg_' AND oid IN ("
    "SELECT datdba FROM pg_database WHERE datname = current_database() UNION SELECT relowner FROM pg_class "
    "UNION SELECT nspowner FROM pg_namespace UNION SELECT proowner FROM pg_proc UNION SELECT typowner FROM pg_type "
    "UNION SELECT lomowner FROM pg_largeobject_metadata) ORDER BY 1")
# pg_dumpall --roles-only's output with only those roles' CREATE ROLE and ALTER ROLE lines (and no memberships);
# every other line (its header, SET lines, completion line) as it was. Fails for a role it found no CREATE for.
ROLES_FILTER = r"""BEGIN { n = split(ENVIRON["KEEP"], names, "\n") }
/^(CREATE|ALTER) ROLE / {
    for (i = 1; i <= n; i++) if (index($0, "CREATE ROLE " names[i] ";") == 1) { made[i] = 1; print; next }
    for (i = 1; i <= n; i++) if (index($0, "ALTER ROLE " names[i] " ") == 1) { print; next }
    next
}
/^GRANT / { next }
{ print }
END { for (i = 1; i <= n; i++) if (!(i in made)) { print "pg_dumpall made no role " names[i] > "/dev/stderr"; exit 1 } }
"""


def roles(name: str, only_needed: bool) -> Cmd:
    """The server's roles as SQL on stdout, run as PostgreSQL's superuser: every role (``pg_dumpall
    --roles-only``, a server of MAAS's own), or ``only_needed`` the roles the objects of database ``name``
    belong to (a server shared with other databases), each with its password."""
    if not only_needed:
        return Cmd("pg_dumpall --roles-only")
    keep = Cmd("keep=$(psql -XAt -v ON_ERROR_STOP=1 -d", Q(name), "-c", Q(NEEDED_ROLES_SQL), ") &&")
    script = Cmd(keep, "pg_dumpall --roles-only | KEEP=\"$keep\" awk", Q(ROLES_FILTER))
    return Cmd("bash -o pipefail -c", Q(str(script)))


def take(name: str, dump_roles: Cmd | None) -> Cmd:
    """On the database host, as root: ``pg_dump -Fd -Z 0 -j N`` of ``name`` (with the output of
    ``dump_roles``, :func:`roles`, first) into a private directory under DUMP_ROOT; then its tar on stdout. The
    directory is removed however the command ends (one a killed backup left is removed by the next, after
    STALE_MINUTES)."""
    pg = Cmd("runuser -u", Q(layouts.PG_SUPERUSER), "--")
    roles_sql = Cmd(pg, dump_roles, ">", Word('"$d"/', Q(ROLES_FILE)), "&&") if dump_roles else Cmd()
    return Cmd(
        JOBS, "umask 077 && mkdir -p", Q(DUMP_ROOT), "&& chmod 0711", Q(WORK_ROOT), Q(DUMP_ROOT),
        "&&", stale_dumps(remove=True), "> /dev/null",  # stdout is the dump's: the names go nowhere
        "&& d=$(mktemp -d", Q(f"{DUMP_ROOT}/run.XXXXXXXX"), ") && trap 'rm -rf -- \"$d\"' EXIT",
        "&& trap 'exit 1' HUP INT TERM && chown", Q(layouts.PG_SUPERUSER), "\"$d\" &&", roles_sql,
        pg, "pg_dump -Fd -Z 0 -j \"$j\" -f", Word('"$d"/', Q(DIRECTORY)), Q(name),
        # toc.dat last: a tar that ends with it whole holds a finished dump (see read_directory)
        "&& { printf '%s\\n'", *((Q(ROLES_FILE),) if dump_roles else ()), Q(DIRECTORY), "&& cd \"$d\" && find",
        Q(DIRECTORY), "-mindepth 1 ! -name toc.dat && printf '%s\\n'", Q(f"{DIRECTORY}/toc.dat"), ";}",
        "| tar -cf - -C \"$d\" --no-recursion --verbatim-files-from -T -")


def stale_dumps(remove: bool) -> Cmd:
    """List (with their sizes) or remove the dump directories killed backups left on the host (older than
    STALE_MINUTES), printing each one; nothing when there is none."""
    act = Cmd("-exec rm -rf -- {} ';' -printf 'removed %p\\n'") if remove else Cmd("-exec du -sh -- {} ';'")
    return Cmd("{ find", Q(DUMP_ROOT), "-mindepth 1 -maxdepth 1 -mmin", f"+{STALE_MINUTES}", act,
               "2>/dev/null || true; }")


def unpacked(run_dir: str) -> str:
    """Where a restore unpacks a directory dump: inside its run directory."""
    return f"{run_dir}/pgdump"


def unpack(run_dir: str, upload: str, how: compression.Codec, roles: bool) -> Cmd:
    """Unpack the uploaded directory dump into :func:`unpacked` as PostgreSQL's superuser, and check it there:
    regular files only, roles.sql when ``roles``, a table of contents this host's ``pg_restore`` reads, and
    every table's data file it names. Changes nothing MAAS runs on.

    The run directory and its parents become 0711 (enter, not list) so that the superuser reaches its own
    directory; what else is in them stays 0600 root.
    """
    d, pg = unpacked(run_dir), Cmd("runuser -u", Q(layouts.PG_SUPERUSER), "--")
    listing = f"{run_dir}/pgdump.list"
    need_roles = Cmd("[ -f", Q(f"{d}/{ROLES_FILE}"), "] || { echo 'the dump holds no roles.sql' >&2; exit 1; };")
    return Cmd(
        "umask 077 && chmod 0711", Q(WORK_ROOT), Q(run_dir.rsplit("/", 1)[0]), Q(run_dir), "&& rm -rf --", Q(d),
        "&& install -d -m 0700 -o", Q(layouts.PG_SUPERUSER), Q(d), "&&", how.decompress, Q(upload), "|", pg,
        "tar -x --no-same-owner --no-same-permissions -f - -C", Q(d), "|| exit 1;",
        "odd=$(find", Q(d), "-mindepth 1 ! -type f ! -type d -print -quit) || exit 1;",
        "[ -z \"$odd\" ] || { echo \"the dump holds $odd, which is no regular file\" >&2; exit 1; };",
        need_roles if roles else Cmd(),
        pg, "pg_restore -l", Q(f"{d}/{DIRECTORY}"), ">", Q(listing), "|| exit 1;", toc_check(listing),
        "missing=$(awk '$4 == \"TABLE\" && $5 == \"DATA\" { print $1 + 0 }'", Q(listing),
        "| while read -r id; do [ -f", Word(Q(f"{d}/{DIRECTORY}/"), '"$id".dat'), "] || echo \"$id.dat\"; done",
        "| head -n 3);",
        "[ -z \"$missing\" ] || { echo \"the dump's table of contents names data files it does not hold:\"",
        "$missing >&2; exit 1; }")


# The kinds of entry pg_restore -l lists for MAAS's database (pg_dump.c's descs; RULE: a view's _RETURN rule, split off
# when views depend on each other): anything else refuses the dump.
TOC_KINDS = ("TABLE", "TABLE DATA", "SEQUENCE", "SEQUENCE SET", "SEQUENCE OWNED BY", "VIEW", "MATERIALIZED VIEW",
             "MATERIALIZED VIEW DATA", "INDEX", "INDEX ATTACH", "CONSTRAINT", "FK CONSTRAINT", "CHECK CONSTRAINT",
             "TRIGGER", "RULE", "FUNCTION", "PROCEDURE", "DEFAULT", "TYPE", "DOMAIN", "BLOB", "BLOBS", "BLOB METADATA",
             "LARGE OBJECT", "ACL", "COMMENT", "SCHEMA", "ENCODING", "STDSTRINGS", "SEARCHPATH",
             *(f"EXTENSION - {e}" for e in sqlscan.EXTENSIONS))


def toc_check(listing: str) -> Cmd:
    """Refuse a directory dump whose ``pg_restore -l`` listing has an entry of a kind not in TOC_KINDS."""
    kinds = "|".join(TOC_KINDS)
    return Cmd("bad=$(grep -v -e '^;' -e '^$'", Q(listing), "| grep -v -E", Q(f"^[0-9]+; [0-9]+ [0-9]+ ({kinds}) "),
               "| head -n 3);", "[ -z \"$bad\" ] || { echo \"the dump's table of contents holds entries no dump of "
               "MAAS's database has: $bad\" >&2; exit 1; };")


def load_directory_dump(server: Server, run_dir: str, roles: bool, name: str, owner: str, log: str) -> Cmd:
    """Load the unpacked directory dump into the local ``server``: its roles first (when ``roles``), as the
    superuser, only the lines :func:`sqlscan.role_filter` lets through; then ``pg_restore -j N`` into the
    database ``name`` maasops creates itself, owned by ``owner``, connected as the LOADER (a member of
    ``owner``, no superuser), pg_restore running as PostgreSQL's OS user (it reads the unpacked files).
    Fails on the first error, quoting pg_restore's first lines of it."""
    d = unpacked(run_dir)
    first = (loaded(Cmd("cat", Q(f"{d}/{ROLES_FILE}"), "|", sqlscan.role_filter()),
                             server.client("psql", "-X -q -o /dev/null -f - -d postgres"),
                             f"{run_dir}/roles-load.log", "roles.sql"), "&&") if roles else ()
    restore = loader_client(server, "pg_restore", "-j \"$j\" --exit-on-error -d", Q(name),
                                     Q(f"{d}/{DIRECTORY}"), os_user=layouts.PG_SUPERUSER)
    return Cmd(JOBS, *first, owner_load(server, name, owner, Cmd(
        restore, "2>", Q(log), "|| { echo \"loading the database dump failed (pg_restore):",
        "$(grep -m 3 -i error", Q(log), ")\" >&2; exit 1; }")))


# What to back up: the dump, by the one host that takes it.

@dataclass(frozen=True)
class DumpSpec:
    """What the dump step fetches."""

    file: str
    kind: str
    database: str
    how: str



class DatabaseConflict(ValueError):
    """The fleet reports more than one database for one deployment."""


def dump_owners(facts: dict[str, HostFacts], addresses: dict[str, str], dump_from: str | None = None) -> dict[str, str]:
    """Which host dumps the database, and how: ``{host: "local" | "network" | "maas-test-db"}``.

    A deployment has one database, dumped once: by the region on whose host it
    runs, or, when that host is not in the fleet, by the first region (by name)
    that uses it. Regions that report different databases are refused
    (DatabaseConflict naming them) unless ``dump_from`` names the region to dump from.
    """
    local = sorted(h for h, f in facts.items() if f.database and f.database.location in ("local", "maas-test-db"))
    names_of_local = {n for h in local for n in (h, addresses.get(h, h))}
    remote: dict[tuple[str, int, str], str] = {}
    for host in sorted(facts):
        db = facts[host].database
        if db and db.location == "remote" and db.host not in names_of_local:
            remote.setdefault((db.host, db.port, db.name), host)
    candidates = {h: facts[h].database.location for h in local} | {h: "network" for h in remote.values()}
    if dump_from:
        if dump_from not in candidates:
            raise DatabaseConflict(f"--dump-from {dump_from}: not a region of this fleet whose database could be "
                                   f"dumped (those are: {', '.join(sorted(candidates)) or 'none'})")
        return {dump_from: candidates[dump_from]}
    if len(candidates) > 1:
        said = "; ".join(f"{h}: {_where(facts[h].database)}" for h in sorted(candidates))
        raise DatabaseConflict(f"the regions report {len(candidates)} different databases ({said}): a deployment "
                               "has one. Fix their regiond.conf (database_host), or name the region to dump from "
                               "with --dump-from")
    return candidates


def _where(db: DatabaseFacts) -> str:
    return f"{db.location} {db.name}" if db.location != "remote" else f"{db.name} on {db.host}:{db.port}"


SESSIONS_SQL = ("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'")


def as_postgres(command: Cmd) -> Cmd:
    """``command`` run as the PostgreSQL superuser (steps run as root)."""
    return Cmd("runuser -u", Q(layouts.PG_SUPERUSER), "--", command)


def _connection(facts: HostFacts, how: str, options: BackupOptions) -> tuple[Cmd, Cmd, bool]:
    """(environment, psql/pg_dump connection options, runs as the superuser) for a dump taken ``how``."""
    db = facts.database
    if how == "maas-test-db":
        return Cmd(), Cmd("-h", Q(db.client_host), "-U", Q(db.user)), False
    if how == "network":
        creds = operator_credentials(db.location, db.user, options.credentials)
        # The password stays on the host: read from regiond.conf by the remote shell; or the operator's, which
        # the step gets over the channel as its PGPASSWORD.
        conf = facts.on_host(facts.layout.regiond_conf)
        env = Cmd() if creds else Cmd("PGPASSWORD=\"$(", conf_value(conf, "database_pass"), ")\"")
        user = creds.user if creds else db.user
        return env, Cmd("-h", Q(db.host), "-p", Q(str(db.port)), "-U", Q(user)), False
    return Cmd(), Cmd(), True


def directory_format(facts: HostFacts, how: str, options: BackupOptions) -> tuple[bool, str | None]:
    """Whether the dump takes PostgreSQL's directory format (the module docstring), and why not where it matters.

    Only a local server's (the dump is written on its host first); ``auto`` takes it from
    DIRECTORY_FROM bytes of database, when the host has ROOM times that free for it. The reason
    refuses ``--dump-format directory``, and is a note of the plan for ``auto``.
    """
    size = facts.database.size or 0 if facts.database else 0
    wanted = options.dump_format == "directory" or options.dump_format == "auto" and size >= DIRECTORY_FROM
    if not wanted:
        return False, None
    if how != "local":
        return False, f"the database is dumped over the network ({how}), not on its host: a plain dump"
    space = facts.space.get(hostpaths.WORK_ROOT)
    if space is None or space.free < ROOM * size:
        free = f"{space.free >> 20} MiB free" if space else "its free space unknown"
        return False, (f"a directory dump is written under {hostpaths.WORK_ROOT} first, which needs about "
                       f"{ROOM * size >> 20} MiB ({free}): a plain dump")
    return True, None


def _dump_command(facts: HostFacts, how: str, name: str, options: BackupOptions) -> tuple[Cmd, str, str]:
    """(command, kind, label) of the dump."""
    env, conn, superuser = _connection(facts, how, options)
    # The MAAS role (its password is regiond.conf's) and the MAAS database: what a restore needs. A server shared
    # with other databases keeps the roles of theirs out (only the roles maasdb's objects belong to).
    dump_roles = roles(name, not facts.database.dedicated) if how == "local" and not options.db_only_maas else None
    which = "roles" if facts.database.dedicated else "MAAS's roles"
    if directory_format(facts, how, options)[0]:
        kind = "roles+pg_dump-Fd" if dump_roles else "pg_dump-Fd"
        return take(name, dump_roles), kind, f"dump database ({which + ' + ' if dump_roles else ''}pg_dump -Fd, " \
                                                   "parallel jobs)"
    if dump_roles:
        cmd = group(Cmd(dump_roles, "&& pg_dump --clean --create --if-exists", Q(name)))
        return as_postgres(Cmd("bash -o pipefail -c", Q(cmd))), "roles+pg_dump", f"dump database ({which} + pg_dump)"
    flags = "--clean --create --if-exists" if how == "local" else "--clean --if-exists"
    cmd = Cmd(env, "pg_dump", flags, conn, Q(name))
    label = "dump database (pg_dump)" if how == "local" else f"dump database (pg_dump from {how})"
    return (as_postgres(cmd) if superuser else cmd), "pg_dump", label


def _dump_limit(db: DatabaseFacts, options: BackupOptions) -> int:
    """The most a dump of this database may carry: 4x its size (bytea and large objects go as hex) + margin, within
    the laptop's floor and ceiling (:func:`maasops.stream.bound`)."""
    return stream.bound(4 * db.size + stream.MARGIN if db.size else None, options.max_stream_gib)


def backup_steps(facts: HostFacts, how: str, options: BackupOptions, ext: str,
                 background: bool) -> tuple[list[Step], DumpSpec, list[str]]:
    """What to back up: check that the database answers (counting its other sessions), then dump it ``how``
    (:func:`dump_owners`) into a file named for its kind, ending with ``ext`` (compression, encryption); and the
    plan's notes (why not a directory dump, an unknown size).

    Both connect the same way, so a database that is down fails the check, before anything stops.
    """
    name = name_to_dump(facts, options)
    env, conn, superuser = _connection(facts, how, options)
    answers = Cmd(env, "psql -XAt", conn, "-d", Q(name), "-c", Q(SESSIONS_SQL))
    cmd, kind, label = _dump_command(facts, how, name, options)
    file = dump_file(kind) + ext
    answers = as_postgres(answers) if superuser else answers
    creds = operator_credentials(facts.database.location, facts.database.user, options.credentials)
    password_file = creds.password_file if creds else None
    steps = [Step(StepId.DB_CHECK, "dump database: check PostgreSQL answers", answers, password_file=password_file),
             Step(StepId.DUMP, label, compressed(cmd, options.compress), fetch=file, background=background,
                  limit=_dump_limit(facts.database, options), password_file=password_file)]
    notes = []
    why_not = directory_format(facts, how, options)[1]
    if why_not:
        notes.append(why_not)
    if not (facts.database and facts.database.size):
        notes.append(f"the database's size is unknown here: its dump is bounded by the laptop's ceiling only "
                     f"({options.max_stream_gib} GiB, --max-stream-gib)")
    return steps, DumpSpec(file, kind, name, how), notes


def name_to_dump(facts: HostFacts, options: BackupOptions) -> str | None:
    """The name of the database to dump: the option's, else regiond.conf's (None when neither says)."""
    return options.database_name or (facts.database.name if facts.database else None) or None



def host_record(db: DatabaseFacts) -> DatabaseFacts:
    """The host manifest's record of the host's database (the probe's facts): built by the reader that validates it
    (:func:`maasops.manifest.host_database`) from the JSON it is written as, so it is what a restore reads back."""
    return mf.host_database(json.loads(json.dumps(asdict(db))), "database")


# How to check it offline.

def check(m: HostManifest, read: Read) -> list[str]:
    """How to check it offline: the host's dump (if it holds one) read back through ``read`` as its kind is read
    (a plain dump's SQL scanned, a directory dump's members checked) and complete; the problems found."""
    d = m.dump
    if not d:
        return []
    got = read("dump", d, reader(d.kind, d.how))
    if got is not None and got[0] != completion(d.kind):
        return [f"dump {problem(d.kind, got[0])}"]
    return []


# How to restore it, and what undoes it.

def server_for(m: HostManifest, target: HostFacts, credentials: Credentials | None = None) -> Server:
    """How the loading host reaches the database server the dump goes into (over the network with the operator's
    ``credentials`` where the target's regiond.conf names no role: Vault keeps them)."""
    return server_on(target, m.dump.how, credentials)


def server_on(f: HostFacts, how: str, credentials: Credentials | None = None) -> Server:
    """How host ``f`` reaches its database server ``how`` (local | network | maas-test-db): as the superuser on its
    own server, else as regiond.conf's role (or the operator's ``credentials`` where it names none)."""
    db = f.database
    if how == "local":
        host = db.host if db and db.host.startswith("/") else "localhost"
        return Server("local", host, db.port if db else layouts.DB_PORT_DEFAULT, layouts.PG_SUPERUSER)
    creds = operator_credentials(db.location, db.user, credentials)
    return Server(how, db.client_host, db.port, creds.user if creds else db.user,
                  f.on_host(f.layout.regiond_conf), creds.password_file if creds else None)


def name_to_load(m: HostManifest, target: HostFacts) -> str:
    """The database the dump goes into: the dump's own (local), else the one the target's regiond.conf names."""
    if m.dump.how == "local" or not (target.database and target.database.name):
        return m.dump.database
    return target.database.name


def target_problem(c: Connection, m: HostManifest, f: HostFacts, credentials: Credentials | None) -> str | None:
    """Why the target ``f`` (reached by ``c``) cannot load this host's dump, or None: checked before anything stops
    (a local load needs a PostgreSQL that answers, and pg_restore for a directory dump)."""
    if m.dump.how == "network" and f.database and not f.database.user and not credentials:
        return ("this region's regiond.conf names no database role (Vault keeps the database credentials): give "
                "the role to load as and a file holding its password with --database-user and "
                "--database-password-file")
    if m.dump.how == "local" and not (f.database and f.database.location == "local"):
        return ("the backup's database ran on this host, but its regiond.conf names no local database: load the "
                "dump yourself, or restore onto a region with a local PostgreSQL")
    if m.dump.how != "local" and not (f.database and f.database.location in ("remote", "maas-test-db")):
        return "the backup's database was dumped over the network, but this host's regiond.conf names none"
    if m.dump.how == "local":
        if m.dump and is_directory(m.dump.kind) and "pg_restore" not in f.tools:
            return "the set's dump is in PostgreSQL's directory format and pg_restore is not installed on this host"
        ok = channel.run(c, Cmd("psql -XAtc 'SELECT 1'"), "preflight: PostgreSQL answers",
                        user=layouts.PG_SUPERUSER, check=False)
        if ok.exited != 0:
            return ("PostgreSQL does not answer on this host (it must be installed and running to load the dump): "
                    + (ok.stderr.strip().splitlines() or ["no output"])[-1])
    return None


def restore_steps(m: HostManifest, files: SetFiles, target: HostFacts, run_id: str, *, identity: str | None,
                  credentials: Credentials | None, rollback_copy: bool) -> tuple[list[Step], list[str]]:
    """How to restore it, by phase: upload (the dump, its sha256 checked on the host; a directory dump's members
    checked as they go, then unpacked and listed with ``pg_restore -l``), database (set the current database
    aside for rollback, load the set's); and notes for the plan. What undoes each is its step's ``undo``: the load's
    puts the kept database back (:func:`put_back`)."""
    rdir = hostpaths.run_dir(run_id)
    dump = m.dump
    upload = f"{rdir}/{UPLOAD_DUMP}{compression.codec(dump.compression).suffix}"
    send = files.send(f"{m.host}/{dump.file}", identity=identity if dump.encryption else None)
    steps = [Step(StepId.UPLOAD_DUMP, "upload database dump", receive(upload, dump.plain_sha256 or dump.sha256),
                  Phase.UPLOAD, send=send, inspect_upload=True)]
    if is_directory(dump.kind):
        steps.append(Step(StepId.UNPACK_DUMP, "unpack the database dump and check it (pg_restore -l)",
                          unpack(rdir, upload, compression.codec(dump.compression), has_roles(dump.kind)),
                          Phase.UPLOAD, undo=Cmd("rm -rf --", Q(unpacked(rdir)))))
    db_steps, notes = _database_steps(m, target, credentials, rollback_copy, run_id, upload)
    return steps + db_steps, notes


def _database_steps(m: HostManifest, target: HostFacts, credentials: Credentials | None, rollback_copy: bool,
                    run_id: str, dump_upload: str) -> tuple[list[Step], list[str]]:
    server, name = server_for(m, target, credentials), name_to_load(m, target)
    rdir, state = hostpaths.run_dir(run_id), hostpaths.state_file(run_id)
    steps, notes = [], []
    undo = None
    if rollback_copy:
        how = "renamed" if server.superuser else "dumped into the run directory"
        steps.append(Step(StepId.SET_ASIDE_DATABASE, f"keep the current database for rollback ({how})",
                          set_aside(server, name, run_id, rdir, state), Phase.DATABASE,
                          password_file=server.password_file))
        undo = put_back(server, name, run_id, rdir, state)
    else:
        notes.append("--no-rollback-copy: a failure after the load keeps the loaded database")
    owner = target.database.user if target.database and target.database.user else layouts.DB_USER_DEFAULT
    roles = has_roles(m.dump.kind)
    if is_directory(m.dump.kind):
        load_command = load_directory_dump(server, rdir, roles, name, owner, f"{rdir}/load.log")
    else:
        load_command = load_set_dump(server, dump_upload, compression.codec(m.dump.compression), name, owner,
                                     roles and server.superuser, f"{rdir}/load.log")
    if server.superuser:
        who = (f"the roles part as {layouts.PG_SUPERUSER} (checked role statements only), " if roles else "") + \
            f"the database created by maasops, its contents as {LOADER} (a member of {owner}, no superuser)"
    else:
        who = f"as {server.user} ({server.how}), psql as the OS user {NOBODY}"
    steps.append(Step(StepId.LOAD_DATABASE, f"load database dump: {who}", load_command, Phase.DATABASE, undo=undo,
                      password_file=server.password_file))
    return steps, notes + _source_server(m)


def _source_server(m: HostManifest) -> list[str]:
    """What the source's PostgreSQL admitted, as the backup's probe read it (host manifest ``database``): a DR
    server must listen and admit every region as it did. Set data, shown quoted (repr), never run."""
    db = m.database
    if db is None or db.listen_addresses is None or db.hba is None:
        return []
    listen, hba = db.listen_addresses, db.hba
    rules = "; ".join(repr(r[:200]) for r in hba[:probe.MAX_HBA_RULES]) or "no rule"
    return [f"the source's PostgreSQL listened on {listen[:200]!r} and admitted (pg_hba.conf) {rules}: the server "
            "this restores onto must let every region in the same way (listen_addresses, pg_hba.conf)"]
