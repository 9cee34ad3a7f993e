"""Dumps of the MAAS database, by kind: how each is read and judged complete, and PostgreSQL's directory
format (taken with parallel jobs on the database host, streamed as a tar, unpacked and loaded with parallel jobs).

A plain dump (``pg_dump``, ``roles+pg_dump``, an old set's ``pg_dumpall``) is SQL that
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
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import BinaryIO

from maasops import backupset, compression, database, layouts, sqlscan, tarstream
from maasops import manifest as mf
from maasops.command import Cmd, Q, Word
from maasops.errors import Unsafe
from maasops.hostpaths import DUMP_ROOT, WORK_ROOT

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


def load(server: database.Server, run_dir: str, roles: bool, name: str, owner: str, log: str) -> Cmd:
    """Load the unpacked directory dump into the local ``server``: its roles first (when ``roles``), as the
    superuser, only the lines :func:`sqlscan.role_filter` lets through; then ``pg_restore -j N`` into the
    database ``name`` maasops creates itself, owned by ``owner``, connected as the LOADER (a member of
    ``owner``, no superuser), pg_restore running as PostgreSQL's OS user (it reads the unpacked files).
    Fails on the first error, quoting pg_restore's first lines of it."""
    d = unpacked(run_dir)
    first = (database.loaded(Cmd("cat", Q(f"{d}/{ROLES_FILE}"), "|", sqlscan.role_filter()),
                             server.client("psql", "-X -q -o /dev/null -f - -d postgres"),
                             f"{run_dir}/roles-load.log", "roles.sql"), "&&") if roles else ()
    restore = database.loader_client(server, "pg_restore", "-j \"$j\" --exit-on-error -d", Q(name),
                                     Q(f"{d}/{DIRECTORY}"), os_user=layouts.PG_SUPERUSER)
    return Cmd(JOBS, *first, database.owner_load(server, name, owner, Cmd(
        restore, "2>", Q(log), "|| { echo \"loading the database dump failed (pg_restore):",
        "$(grep -m 3 -i error", Q(log), ")\" >&2; exit 1; }")))
