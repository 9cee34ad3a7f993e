"""The plain dump scanner (maasops.sqlscan): what pg_dump writes passes, what psql or the server would run refuses."""

from __future__ import annotations

import io
import re
import subprocess
from importlib import resources

import pytest

from maasops import sqlscan

HEAD = "SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n"
TABLE = ("CREATE TABLE public.t (\n    id integer NOT NULL,\n    s text\n);\n\n"
         "ALTER TABLE public.t OWNER TO maas;\n\nCOPY public.t (id, s) FROM stdin;\n1\t\\N\n2\t\\\\x\\.y\n\\.\n\n")
ROLES = ("--\n-- PostgreSQL database cluster dump\n--\n\n\\restrict abc123\n\n"
         "SET default_transaction_read_only = off;\n\n"
         "CREATE ROLE maas;\nALTER ROLE maas WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION "
         "NOBYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:4Skc3z9JYrRhbrAdZpykOA==$a//Drp9OaeTk+jF8=:YYpeFYDi9orXFC=';\n"
         "CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION "
         "BYPASSRLS;\n\n\\unrestrict abc123\n\n--\n-- PostgreSQL database cluster dump complete\n--\n\n")
CREATE = ("DROP DATABASE IF EXISTS maasdb;\nCREATE DATABASE maasdb WITH TEMPLATE = template0 ENCODING = 'UTF8';\n"
          "ALTER DATABASE maasdb OWNER TO maas;\n\n\\unrestrict k1\n\\connect maasdb\n\\restrict k1\n\n")


def problem(text: str, **kw) -> str | None:
    try:
        sqlscan.scan(io.BytesIO(text.encode()), sqlscan.Scanner(**kw), chunk=7)  # small chunks: lines split anyhow
    except sqlscan.Refused as exc:
        return str(exc)
    return None


def test_what_pg_dump_writes_passes():
    assert problem(HEAD + TABLE) is None
    assert problem(ROLES, only_roles=True) is None
    assert problem(ROLES + HEAD + CREATE + HEAD + TABLE, roles=True, create=True) is None
    body = ("CREATE FUNCTION public.f() RETURNS trigger\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n"
            "  PERFORM pg_notify('x', 'a\\b;c');  -- \\! not run\n  RETURN NEW;\nEND;\n$$;\n"
            "CREATE VIEW public.v AS\n SELECT t.id /* ; \\! */ FROM public.t;\n"
            "SELECT pg_catalog.lo_create('16931');\nSELECT pg_catalog.lowrite(0, '\\x68656c6c6f');\n")
    assert problem(HEAD + body) is None


@pytest.mark.parametrize("text,says", [
    ("\\! touch /tmp/pwned\n", "line 3: a psql meta-command '\\\\! touch /tmp/pwned'"),
    ("SELECT 1; \\! id\n", "line 3: 'SELECT 1;' is no statement"),
    ("CREATE TABLE x (a int); \\! id\n", "line 3: a psql meta-command"),
    ("\\connect maasdb\n", "line 3: a psql meta-command"),
    ("\\restrict k; \\! id\n", "line 3: a psql meta-command"),
    ("COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned2';\n", "'TO PROGRAM'"),
    ("COPY public.t (id) FROM '/etc/shadow';\n", "is no statement pg_dump writes"),
    ("COPY public.t (id) TO stdout;\n", "is no statement pg_dump writes"),
    ("ALTER SYSTEM SET archive_command = 'touch /tmp/x';\n", "'ALTER SYSTEM'"),
    ("ALTER ROLE maas SUPERUSER;\n", "is no statement pg_dump writes"),
    ("CREATE ROLE evil SUPERUSER;\n", "is no statement pg_dump writes"),
    ("DO $$ BEGIN PERFORM 1; END $$;\n", "is no statement pg_dump writes"),
    ("SET ROLE postgres;\n", "'SET ROLE'"),
    ("SET SESSION AUTHORIZATION postgres;\n", "'SET SESSION AUTHORIZATION'"),
    ("SET standard_conforming_strings = off;\n", "is no statement pg_dump writes"),
    ("SELECT pg_read_file('/etc/shadow');\n", "'pg_read_file'"),
    ("SELECT lo_import('/etc/shadow');\n", "'lo_import'"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$ import os $$;\n", "a function in language plpython3u"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE c AS '/tmp/x.so', 'f';\n", "a function in language c"),
    ("CREATE EXTENSION adminpack;\n", "extension 'adminpack'"),
    ("GRANT pg_execute_server_program TO maas;\n", "'pg_execute_server_program'"),
    ("GRANT postgres TO maas;\n", "a role membership"),
    ("CREATE TABLE t (a int);\nCOPY public.t (a) FROM stdin;\n1\n\\.x\n", "line 6: a COPY data line"),
    ("SELECT pg_catalog.setval('s', 1, true); SELECT 1;\n", "is no statement"),
    ("COMMENT ON TABLE t IS 'x'\n", "ends inside a statement"),
])
def test_what_psql_or_the_server_would_run_is_refused_naming_the_line(text, says):
    got = problem(HEAD + text)
    assert got is not None and says in got, got


def test_a_quote_hides_no_meta_command_and_a_comment_none_either():
    assert problem(HEAD + "COMMENT ON TABLE public.t IS 'a\n\\! id\nb';\n") is None  # inside a string: data
    assert problem(HEAD + "COMMENT ON TABLE public.t IS E'a\\'\n\\! id\n';\n") is None
    assert "meta-command" in problem(HEAD + "COMMENT ON TABLE public.t IS 'a\\';\n\\! id\n';\n")


def test_a_create_dump_has_its_header_and_one_connect_and_nothing_else_before_it():
    assert problem(HEAD + CREATE + TABLE, create=True) is None
    assert "no \\connect" in problem(HEAD + CREATE.replace("\\connect maasdb\n", ""), create=True)
    got = problem(HEAD + "CREATE TABLE public.x (a int);\n" + CREATE + TABLE, create=True)
    assert "line 3: 'CREATE TABLE public.x (a int);' before the dump's \\connect" in got, got
    assert "a psql meta-command '\\\\connect maasdb'" in problem(HEAD + CREATE + "\\connect maasdb\n" + TABLE,
                                                                   create=True)


@pytest.mark.parametrize("line", [
    "ALTER ROLE maas WITH SUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;",
    "CREATE ROLE evil;\nALTER ROLE evil WITH SUPERUSER LOGIN;",
    "ALTER ROLE maas WITH NOSUPERUSER CREATEROLE;",
    "ALTER ROLE maas WITH NOSUPERUSER BYPASSRLS;",
    "ALTER ROLE maas SET session_preload_libraries TO '/tmp/x.so';",
    "GRANT pg_read_server_files TO maas GRANTED BY postgres;",
    "GRANT postgres TO maas;",
    "ALTER ROLE maas WITH LOGIN PASSWORD 'plain';",
    "CREATE ROLE \"Evil\";",
    "SELECT 1;",
    "\\! id",
])
def test_the_roles_part_refuses_all_but_safe_roles_naming_the_line(line):
    bad = ROLES.replace("\\unrestrict", line + "\n\\unrestrict")
    got = problem(bad, only_roles=True)
    assert got is not None and got.startswith("line ") and "the roles part may only" in got, got
    assert problem(bad + HEAD + CREATE + TABLE, roles=True, create=True) == got


def test_role_options_and_grants_as_pg_dumpall_15_to_17_writes_them_pass():
    ok = ("GRANT maas TO other GRANTED BY postgres;\nGRANT maas TO other WITH ADMIN OPTION, INHERIT FALSE, SET TRUE "
          "GRANTED BY postgres;\nALTER ROLE other WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION "
          "NOBYPASSRLS CONNECTION LIMIT 5 VALID UNTIL 'infinity' PASSWORD 'md5" + "0" * 32 + "';\n")
    assert problem(ROLES.replace("\\unrestrict", ok + "\\unrestrict"), only_roles=True) is None


def test_a_column_named_role_is_no_set_role():
    assert problem(HEAD + "CREATE FUNCTION public.f() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
                   "  UPDATE public.t SET role = 1;\n  RETURN NEW;\nEND;\n$$;\n") is None


def test_the_hosts_role_filter_lets_through_only_the_checked_lines_never_the_superusers():
    out = subprocess.run(["bash", "-c", str(sqlscan.role_filter())], input=ROLES + "GRANT maas TO other;\n"
                         "GRANT pg_read_server_files TO maas;\nALTER ROLE evil WITH SUPERUSER;\n",
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "CREATE ROLE maas;", next(ln for ln in ROLES.splitlines() if ln.startswith("ALTER ROLE maas")),
        "GRANT maas TO other;"]


def test_the_lab_schema_as_the_real_pg_dump_writes_it_passes(scratch_pg):
    """pg_dump 15's real output (roles, --create, --clean --if-exists, large objects) of the lab's schema."""
    as_pg = ["runuser", "-u", "postgres", "--"]
    host = ["-h", str(scratch_pg)]
    subprocess.run([*as_pg, "psql", "-X", "-q", *host, "-c", "CREATE ROLE maas LOGIN PASSWORD 'pw'", "-c",
                    "CREATE DATABASE maasdb OWNER maas"], check=True, capture_output=True)
    sql = resources.files("maasops.lab") / "sql"
    schema = (sql / "schema.sql").read_text() + (sql / "triggers.sql").read_text()
    schema += "SELECT lo_from_bytea(0, 'image bytes'::bytea);\n"
    schema += "INSERT INTO maasserver_zone (name) VALUES (E'a\\\\.b');\n"
    subprocess.run([*as_pg, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *host, "-U", "maas", "maasdb"],
                   input=schema, text=True, check=True, capture_output=True)

    def dump(*args: str) -> bytes:
        return subprocess.run([*as_pg, *args, *host], check=True, capture_output=True).stdout

    roles = dump("pg_dumpall", "--roles-only")
    create = dump("pg_dump", "--clean", "--create", "--if-exists", "maasdb")
    network = dump("pg_dump", "--clean", "--if-exists", "-U", "maas", "maasdb")
    assert re.search(rb"^\\restrict [A-Za-z0-9]+$", create, re.M)  # pg_dump 15.14+: CVE-2025-8714's guard
    for data, kw in ((roles + create, {"roles": True, "create": True}), (create, {"create": True}),
                     (network, {}), (roles, {"only_roles": True})):
        sqlscan.scan(io.BytesIO(data), sqlscan.Scanner(**kw))
