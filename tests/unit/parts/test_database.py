"""Directory-format dumps without a host: when a backup takes one, how its tar is judged, what a restore runs."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from maasops import backup_plan as bp
from maasops import hostpaths, layouts
from maasops import manifest as mf
from maasops.backupset import LocalFiles
from maasops.compression import codec
from maasops.parts import database
from maasops.plan import Phase, StepId
from maasops.probe import DatabaseFacts, Space
from maasops.restore_plan import FleetRole, RestoreOptions, restore_plan
from tests.builders import DB_LOCAL, facts, manifest, target, text
from tests.forge import info

ROLES_SQL = f"CREATE ROLE maas;\n\n--\n{layouts.DUMPALL_COMPLETE_LINE}\n--\n\n\\unrestrict abc\n".encode()
BIG = database.DIRECTORY_FROM


def big(size: int = BIG, free: int | None = 10 * BIG, db: DatabaseFacts = DB_LOCAL):
    space = {hostpaths.WORK_ROOT: Space(free, "/")} if free is not None else {}
    return facts(db=replace(db, size=size), space=space)


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m, data in members:
            tar.addfile(m, io.BytesIO(data) if data is not None else None)
    raw.seek(0)
    return raw


def good(*extra, roles: bytes | None = ROLES_SQL, toc: bool = True) -> list:
    items = [(info("roles.sql", size=len(roles)), roles)] if roles is not None else []
    items += [(info("db", tarfile.DIRTYPE, 0o700), None), (info("db/3720.dat", size=3), b"1\t\n"),
              (info("db/blob_17096.dat", size=1), b"x"), (info("db/blobs.toc", size=1), b"x")]
    items += [(info("db/toc.dat", size=5), b"PGDMP")] if toc else []
    return items + list(extra)


def verdict(items, roles: bool = True) -> str:
    return database.read_directory(tar_of(*items), "none", None, roles)[0]


def test_a_complete_directory_dump_is_judged_complete_and_measured():
    raw = tar_of(*good())
    got = database.read_directory(raw, "none")
    assert got[0] == database.COMPLETE == database.completion("roles+pg_dump-Fd")
    assert got[2] == got[3] == len(raw.getvalue())
    assert verdict(good(roles=None), roles=False) == database.COMPLETE


@pytest.mark.parametrize("items, says", [
    (good(toc=False), "no db/toc.dat: pg_dump did not finish"),
    (good(roles=b"CREATE ROLE maas;\n"), "roles.sql is cut short"),
    (good(roles=None), "no roles.sql"),
    (good((info("db/1.dat", tarfile.SYMTYPE, link="/etc/shadow"), None)), "'db/1.dat' is not a regular file"),
    (good((info("etc/cron.d/x", size=1), b"x")), "'etc/cron.d/x' is not a file a directory dump holds"),
    (good((info("db/../../etc/x", size=1), b"x")), "is not a file a directory dump holds"),
    (good((info("db/sub", tarfile.DIRTYPE), None)), "'db/sub' is not a file a directory dump holds"),
    (good((info("db/toc.dat", size=1), b"x")), "/db/toc.dat: in the archive twice"),
    (good((info("db/7.dat", tarfile.CHRTYPE), None)), "'db/7.dat' is not a regular file"),
])
def test_anything_but_a_directory_dump_is_named(items, says):
    assert says in verdict(items)


def test_roles_sql_is_refused_in_a_dump_without_roles_and_a_cut_tar_is_incomplete():
    assert "'roles.sql' is not a file a directory dump holds" in verdict(good(), roles=False)
    whole = tar_of(*good()[:-1], (info("db/toc.dat", size=3000), b"P" * 3000)).getvalue()
    cut = whole[:whole.index(b"P" * 3000) + 2000]
    assert "not a complete tar" in database.read_directory(io.BytesIO(cut), "none")[0]
    late = (info("db/3721.dat", size=1), b"x")
    assert verdict(good() + [late]) == "'db/3721.dat' follows db/toc.dat, which pg_dump writes last"


def test_the_upload_inspector_raises_on_a_bad_dump_and_passes_a_good_one():
    check = database.inspector("roles+pg_dump-Fd", "local", "none")
    assert check(tar_of(*good())) == database.COMPLETE
    with pytest.raises(database.Unsafe, match="the database dump: 'x' is not a file"):
        check(tar_of(*good((info("x", size=1), b"x"))))


def test_auto_takes_the_directory_format_for_a_large_local_database_with_room():
    dump = bp.backup_plan(big(), "local", bp.BackupOptions()).steps[1]
    assert dump.label == "dump database (roles + pg_dump -Fd, parallel jobs)" and dump.fetch == "maasdb.tar.zst"
    assert 'pg_dump -Fd -Z 0 -j "$j" -f "$d"/db maasdb' in text(dump)
    assert "pg_dumpall --roles-only > \"$d\"/roles.sql" in text(dump) and "trap 'rm -rf -- \"$d\"' EXIT" in text(dump)
    assert "printf '%s\\n' roles.sql db && cd \"$d\" && find db -mindepth 1 ! -name toc.dat && printf '%s\\n' " \
           "db/toc.dat ;} | tar -cf - -C \"$d\" --no-recursion --verbatim-files-from -T - | " \
           f"{codec('zstd').compress}" in text(dump)
    assert bp.backup_plan(big(), "local", bp.BackupOptions(db_only_maas=True)).spec.dump.kind == "pg_dump-Fd"


@pytest.mark.parametrize("host, how, fmt", [
    (big(size=BIG - 1), "local", "auto"),  # small
    (big(free=BIG), "local", "auto"),  # no room
    (big(free=None), "local", "auto"),  # room unknown
    (big(), "local", "plain"),
    (big(db=DatabaseFacts("remote", "10.0.0.5", 5432, "maasdb", "maas")), "network", "auto"),
])
def test_otherwise_the_dump_stays_plain(host, how, fmt):
    spec = bp.backup_plan(host, how, bp.BackupOptions(dump_format=fmt)).spec
    assert spec.dump.kind in ("pg_dump", "roles+pg_dump") and spec.dump.file == "maasdb.sql.zst"


def test_asking_for_a_directory_dump_where_it_cannot_be_taken_is_refused_with_the_reason():
    remote = DatabaseFacts("remote", "10.0.0.5", 5432, "maasdb", "maas")
    p = bp.backup_plan(big(db=remote), "network", bp.BackupOptions(dump_format="directory"))
    assert p.error == "--dump-format directory: the database is dumped over the network (network), not on its host"
    p = bp.backup_plan(big(free=BIG), "local", bp.BackupOptions(dump_format="directory"))
    assert p.error.endswith(f"needs about {2 * BIG >> 20} MiB ({BIG >> 20} MiB free)")
    [note] = bp.backup_plan(big(free=BIG), "local", bp.BackupOptions()).notes
    assert note.endswith(f"({BIG >> 20} MiB free): a plain dump")
    assert bp.backup_plan(big(size=1), "local", bp.BackupOptions(dump_format="directory")).spec.dump.kind == \
        "roles+pg_dump-Fd"


def test_a_manifest_may_name_a_directory_dump_only_as_a_local_tar():
    assert mf.dump_file("roles+pg_dump-Fd") == "maasdb.tar" and mf.dump_file("pg_dump") == "maasdb.sql"
    sha = "0" * 64
    entry = {"file": "maasdb.tar.zst", "compression": "zstd", "size": 1, "sha256": sha, "kind": "pg_dump-Fd",
             "database": "maasdb", "how": "local", "last_line": database.COMPLETE, "uncompressed_size": 2}
    assert mf._dump(mf._Obj(entry, "m")).kind == "pg_dump-Fd"
    with pytest.raises(mf.ManifestError, match="must be 'maasdb.tar.zst'"):
        mf._dump(mf._Obj({**entry, "file": "maasdb.sql.zst"}, "m"))
    with pytest.raises(mf.ManifestError, match="not one maasops makes"):
        mf._dump(mf._Obj({**entry, "how": "network"}, "m"))


def test_a_restore_of_a_directory_dump_unpacks_and_checks_it_before_the_stop_and_loads_it_with_jobs():
    dump = mf.Dump("maasdb.tar.zst", "zstd", 5, "cd" * 32, None, None, "roles+pg_dump-Fd", "maasdb", "local",
                   database.COMPLETE, 50)
    m = manifest("region1", "deb", "1:3.5.3-1", ("region",), dump=dump)
    t = target("region1", "deb", "1:3.5.3-1", ("region",), database=DB_LOCAL)
    p = restore_plan(m, LocalFiles(Path("/s")), t, FleetRole(True, True), RestoreOptions(), "r")
    ids = [s.id for s in p.steps]
    unpack = p.steps[ids.index(StepId.UNPACK_DUMP)]
    assert ids.index(StepId.UNPACK_DUMP) < ids.index(StepId.STOP_UNITS) and unpack.phase == Phase.UPLOAD
    assert p.steps[ids.index(StepId.UPLOAD_DUMP)].inspect_upload
    assert "runuser -u postgres -- tar -x --no-same-owner --no-same-permissions" in text(unpack)
    assert "pg_restore -l" in text(unpack) and "! -type f ! -type d" in text(unpack)
    assert str(unpack.undo).startswith("rm -rf -- ") and str(unpack.undo).endswith("/pgdump")
    load = text(p.steps[ids.index(StepId.LOAD_DATABASE)])
    assert "the dump's table of contents holds entries no dump of MAAS's database has" in text(unpack)
    # the database maasops creates; its contents loaded by a login that is no superuser, dropped afterwards
    assert "CREATE DATABASE :\"db\" OWNER :\"owner\"" in load and "-v owner=maas -v db=maasdb" in load
    restore = ('PGPASSWORD="$pw" PGCLIENTENCODING=UTF8 PGOPTIONS=\'-c standard_conforming_strings=on\' runuser -u '
               'postgres -- pg_restore -h localhost -p 5432 -U maasops_loader -j "$j" --exit-on-error -d maasdb')
    assert restore in load and "--create" not in load
    assert load.index("roles.sql | { grep -E") < load.index("pg_restore -h") < load.index("DROP ROLE :\"loader\"")
    assert "maasops_loader" in p.steps[ids.index(StepId.LOAD_DATABASE)].label
    assert text(p.steps[ids.index(StepId.CLEANUP)]).endswith("/pgdump")


def test_a_shared_servers_roles_are_the_ones_maasdb_needs_as_pg_dumpall_wrote_them(tmp_path):
    """Issue 23: the host's awk keeps the CREATE/ALTER ROLE lines of the roles maasdb's objects belong to,
    drops the other applications' roles and the memberships, and fails for a role pg_dumpall did not make."""
    import subprocess
    dumpall = ("--\n-- PostgreSQL database cluster dump\n--\n\n\\restrict abc\nSET client_encoding = 'UTF8';\n"
               "CREATE ROLE billing;\nALTER ROLE billing WITH LOGIN PASSWORD 'SCRAM-SHA-256$x';\n"
               "CREATE ROLE maas;\nALTER ROLE maas WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$y';\n"
               "CREATE ROLE maasy;\nCREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER;\n"
               "GRANT billing TO maas GRANTED BY postgres;\n\\unrestrict abc\n\n"
               "--\n-- PostgreSQL database cluster dump complete\n--\n\n")

    def keep(names: str) -> subprocess.CompletedProcess:
        return subprocess.run(["awk", database.ROLES_FILTER], input=dumpall, capture_output=True, text=True,
                              env={"KEEP": names, "PATH": "/usr/bin:/bin"})
    got = keep("maas")
    assert got.returncode == 0
    assert [ln for ln in got.stdout.splitlines() if "ROLE" in ln or "GRANT" in ln] == [
        "CREATE ROLE maas;", "ALTER ROLE maas WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$y';"]
    assert got.stdout.rstrip().endswith("-- PostgreSQL database cluster dump complete\n--")
    assert "\\restrict abc" in got.stdout
    missing = keep("maas\nnobody")
    assert missing.returncode == 1 and "made no role nobody" in missing.stderr
def test_a_directory_dumps_roles_sql_is_read_as_the_roles_part_naming_the_line():
    evil = ROLES_SQL.replace(b"CREATE ROLE maas;\n", b"CREATE ROLE maas;\nALTER ROLE maas WITH SUPERUSER;\n")
    got = verdict(good(roles=evil))
    assert got.startswith(database.REFUSED + "roles.sql: line 2: the roles part may only"), got  # not "incomplete"


def test_the_upload_inspector_reads_a_plain_dump_as_psql_would():
    check = database.inspector("pg_dump", "network", "none")
    assert check(io.BytesIO(b"SET client_encoding = 'UTF8';\n")) == "checked"
    with pytest.raises(database.Unsafe, match=r"line 2: a psql meta-command '\\\\! touch /tmp/x'"):
        check(io.BytesIO(b"SET client_encoding = 'UTF8';\n\\! touch /tmp/x\n"))
