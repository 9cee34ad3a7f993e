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

from maasops import layouts
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
        if p.stat().st_mode & 0o077:
            raise PasswordFileError(f"database password file {p} is readable by others: chmod 600 it")
        with p.open("rb") as f:
            line = f.readline(4096).rstrip(b"\r\n")
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

    def client(self, program: str, *args: str | Cmd) -> Cmd:
        """``program`` (psql, pg_dump, pg_dumpall) connected to this server; as the superuser on a local one."""
        if self.how == "local":
            sock = Cmd("-h", Q(self.host)) if self.host.startswith("/") else Cmd()
            return Cmd("runuser -u", Q(layouts.PG_SUPERUSER), "--", program, "-p", Q(str(self.port)), sock, *args)
        if self.how == "maas-test-db":
            return Cmd(program, "-h", Q(self.host), "-U", Q(self.user), *args)
        password = Cmd() if self.password_file else \
            Word("PGPASSWORD=\"$(", conf_value(self.conf, "database_pass"), ")\"")
        return Cmd(password, program, "-h", Q(self.host), "-p", Q(str(self.port)), "-U", Q(self.user), *args)

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


def load(server: Server, dump: str, how: Codec, database: str, log: str) -> Cmd:
    """Load a plain SQL dump into ``server``; fail on any error but the harmless ones (HARMLESS_LOAD_ERRORS).

    A local server loads as the superuser into ``postgres`` (the dump creates the database); a
    network one as the MAAS role into the database itself (that dump has no CREATE DATABASE).
    """
    target = "postgres" if server.superuser else database
    harmless = Cmd(*(Cmd("-e", Q(e)) for e in HARMLESS_LOAD_ERRORS))
    psql = server.client("psql", "-X -q -o /dev/null -f - -d", Q(target))
    return Cmd("umask 077;", how.decompress, Q(dump), "|", psql,
               "2>", Q(log), "; rc=$?; errors=$(grep 'ERROR:'", Q(log), "| grep -vE", harmless, "| head -n 3);",
               "[ \"$rc\" = 0 ] && [ -z \"$errors\" ] || { echo \"loading", Q(dump), "failed (psql exit $rc): "
               "$errors\" >&2; exit 1; }")


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
