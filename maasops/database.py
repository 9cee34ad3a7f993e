"""Commands that keep, load and put back the MAAS database on the host that loads it.

A restore keeps the database it replaces, for rollback. On a server the loading
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

from dataclasses import dataclass
from pathlib import Path

from maasops import layouts, secretfile, sqlscan
from maasops.command import Cmd, Q, Word
from maasops.compression import Codec, codec
from maasops.hostfiles import record, recorded
from maasops.probe import conf_value

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


def keep(server: Server, database: str, run_id: str, run_dir: str, state: str) -> Cmd:
    """Keep the database a restore replaces: renamed (local) or dumped into ``run_dir`` (network); recorded."""
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
    """Put back what :func:`keep` kept, by what the host recorded (nothing, when it recorded nothing)."""
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


def prune(server: Server, keep_n: int) -> Cmd:
    """Drop kept databases of older restores, all but the newest ``keep_n``; print each one dropped."""
    return Cmd(sql(server, PRUNE, keep=str(int(keep_n))), "| sed 's/^/dropped kept database /'")
