"""The drill's database fingerprint, in a real PostgreSQL: tables and large objects (MAAS <= 3.4's images)."""

from __future__ import annotations

import subprocess

import pytest

from maasops import fingerprints
from tests.conftest import pg_tool

pytestmark = pytest.mark.lab

# Objects of 0 bytes, exactly one chunk, and two chunks and a half: every way the chunked read can end.
OBJECTS = {1001: 0, 1002: fingerprints.CHUNK, 1003: fingerprints.CHUNK * 5 // 2}


def _psql(sock, db: str, sql: str) -> str:
    cmd = ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", str(sock), "-d", db]
    return subprocess.run(cmd, input=sql, check=True, capture_output=True, text=True, cwd="/").stdout


def _fingerprint(sock, db: str) -> dict[str, str]:
    return fingerprints.parse_fingerprint(_psql(sock, db, fingerprints.FINGERPRINT_SQL))


def test_a_copy_through_pg_dump_is_equal_and_one_byte_of_a_large_object_is_not(scratch_pg):
    _psql(scratch_pg, "postgres", "CREATE DATABASE a; CREATE DATABASE b;")
    objects = "".join(f"SELECT lo_from_bytea({oid}, decode(repeat(md5('{oid}'), {size // 32}), 'hex') || "
                      f"decode(repeat(md5('{oid}'), {size // 32}), 'hex'));\n" for oid, size in OBJECTS.items())
    _psql(scratch_pg, "a", "CREATE TABLE maasserver_largefile (id int PRIMARY KEY, content oid);\n"
                           "INSERT INTO maasserver_largefile VALUES (1, 1001), (2, 1002), (3, 1003);\n" + objects)
    dump = subprocess.run(["runuser", "-u", "postgres", "--", pg_tool("pg_dump"), "-h", str(scratch_pg), "a"],
                          check=True, capture_output=True, text=True, cwd="/").stdout
    _psql(scratch_pg, "b", dump)
    a = _fingerprint(scratch_pg, "a")
    assert set(a) == {"maasserver_largefile", fingerprints.LARGE_OBJECTS}
    assert a[fingerprints.LARGE_OBJECTS].startswith("3:") and a == _fingerprint(scratch_pg, "b")
    assert _psql(scratch_pg, "b", "SELECT sum(length(lo_get(oid))) FROM pg_largeobject_metadata").strip() == \
        str(sum(OBJECTS.values()))
    at = fingerprints.CHUNK * 2 + 7  # one byte of the last chunk, flipped
    flipped = f"set_byte('\\x00'::bytea, 0, get_byte(lo_get(1003, {at}, 1), 0) # 1)"
    _psql(scratch_pg, "b", f"SELECT lo_put(1003, {at}, {flipped})")
    b = _fingerprint(scratch_pg, "b")
    assert b["maasserver_largefile"] == a["maasserver_largefile"]
    assert b[fingerprints.LARGE_OBJECTS] != a[fingerprints.LARGE_OBJECTS]


def test_a_database_without_large_objects_has_an_empty_line_for_them(scratch_pg):
    _psql(scratch_pg, "postgres", "CREATE DATABASE c")
    assert _fingerprint(scratch_pg, "c") == {fingerprints.LARGE_OBJECTS: "0:"}
