"""What a plain SQL dump may hold: data and MAAS's schema, nothing psql or the server would run besides.

A dump is SQL that ``psql`` executes; a set is hostile input (a compromised controller streams
what it likes and the laptop signs it), so the same bytes are read, as they stream, on the
laptop by ``verify`` and as the restore uploads them (the host checks their sha256, so it loads
exactly what was read here). :class:`Scanner` reads them as psql's lexer does (quotes, dollar
quotes, comments, parentheses, ``COPY ... FROM stdin`` data up to ``\\.``) and refuses, naming the
line:

- any psql meta-command (a backslash outside quotes, comments and COPY data), but ``\\restrict KEY``
  and ``\\unrestrict KEY`` as pg_dump 13.22/14.19/15.14/16.10/17.6+ writes them (CVE-2025-8714) and,
  in a ``--create`` dump's header only, one ``\\connect NAME``;
- any statement that is not one of the kinds pg_dump writes for a database like MAAS's
  (:data:`STATEMENTS`, an allow-list): no ``COPY ... TO/FROM PROGRAM`` or a file, no ``ALTER SYSTEM``,
  ``DO``, ``SET ROLE``/``SESSION AUTHORIZATION``, no role or database statements outside their
  places, no functions in another language than sql or plpgsql, no extension outside
  :data:`EXTENSIONS`, no server-side file or program functions (:data:`FORBIDDEN_WORDS`) anywhere
  outside COPY data, function bodies included;
- in the roles part (``pg_dumpall --roles-only``: the head of a ``roles+pg_dump`` dump up to its
  completion line, a directory dump's roles.sql), anything but the statements of :data:`ROLE_LINES`:
  ``CREATE ROLE name;``, ``ALTER ROLE name WITH`` options that give no superuser, role creation,
  replication or row-security bypass, and a hashed password; ``GRANT role TO role`` of roles that
  are not PostgreSQL's own. The postgres role's own lines are read (in pg_dumpall's form) and skipped.

The host loads the roles part through :func:`role_filter` (only lines of ROLE_LINES, the
postgres role's left out), so what reaches psql is the statements checked here, re-emitted one per
line, and never a line passed through unread.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import BinaryIO

from maasops import layouts
from maasops.command import Cmd, Q

MAX_STATEMENT = 4 << 20  # pg_dump's longest: a large object's lowrite (32 KiB hex), a view or function
# Role names the roles part may set: PostgreSQL's unquoted identifiers, none of its own (pg_*).
ROLE_NAME = "[a-z_][a-z0-9_]{0,62}"
SUPERUSER = layouts.PG_SUPERUSER
_SAFE_OPTION = ("(NOSUPERUSER|INHERIT|NOINHERIT|NOCREATEROLE|CREATEDB|NOCREATEDB|LOGIN|NOLOGIN|NOREPLICATION|"
                "NOBYPASSRLS)")
_ANY_OPTION = "(NO)?(SUPERUSER|INHERIT|CREATEROLE|CREATEDB|LOGIN|REPLICATION|BYPASSRLS)"
_PASSWORD = ("( PASSWORD '(md5[0-9a-f]{32}|SCRAM-SHA-256[$][0-9]{1,7}:[A-Za-z0-9+/=]{1,200}[$][A-Za-z0-9+/=]{1,200}"
             ":[A-Za-z0-9+/=]{1,200})')?")
_LIMITS = "( CONNECTION LIMIT -?[0-9]{1,9})?( VALID UNTIL '([0-9 :+.-]{1,40}|infinity)')?"
# GRANT's options as pg_dumpall writes them: up to 15 "WITH ADMIN OPTION", from 16 also INHERIT and SET
_GRANT_OPTION = "(ADMIN OPTION|INHERIT (TRUE|FALSE)|SET (TRUE|FALSE))"
# The roles part's statements, as pg_dumpall --roles-only writes them (one line each), in the syntax both
# Python's re and grep -E read: what the laptop accepts and the host's role_filter lets through are one list.
ROLE_LINES = (
    f"CREATE ROLE {ROLE_NAME};",
    f"ALTER ROLE {ROLE_NAME} WITH( {_SAFE_OPTION})*{_LIMITS}{_PASSWORD};",
    f"GRANT {ROLE_NAME} TO {ROLE_NAME}( WITH {_GRANT_OPTION}(, {_GRANT_OPTION})*)?( GRANTED BY {ROLE_NAME})?;",
)
# Lines of ROLE_LINES' forms that touch PostgreSQL's own roles (pg_*, the superuser): granting one is a superuser's
# power; they are refused on the laptop and dropped on the host.
RESERVED_ROLES = (f"^GRANT (pg_[a-z0-9_]*|{layouts.PG_SUPERUSER}) TO ", "^(CREATE|ALTER) ROLE pg_", " TO pg_")
# The superuser's own lines: read, never loaded (the target's superuser stays as it is).
SUPERUSER_LINES = (f"CREATE ROLE {SUPERUSER};", f"ALTER ROLE {SUPERUSER} WITH( {_ANY_OPTION})*{_LIMITS}{_PASSWORD};")
ROLES_SETTINGS = ("SET default_transaction_read_only = off;", "SET client_encoding = 'UTF8';",
                  "SET standard_conforming_strings = on;")
EXTENSIONS = ("plpgsql",)  # extensions a dump may create (MAAS's schema uses none beyond the built-in language)
LANGUAGES = ("plpgsql", "sql")
FORBIDDEN_WORDS = re.compile(
    r"\b(lo_import|lo_export|pg_read_file|pg_read_binary_file|pg_ls_dir|pg_stat_file|pg_file_write|"
    r"pg_execute_server_program|pg_read_server_files|pg_write_server_files|dblink\w*|"
    r"alter\s+system|(set|reset)\s+(role|session\s+authorization)\b(?!\s*=)|(to|from)\s+program)\b", re.I)
_ID = r'(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")'
_QNAME = rf"{_ID}(?:\.{_ID})?"
_SETTING = r"(?:'[a-z0-9_]*'|[a-z0-9_.]+)"
# Statements outside the roles part, as pg_dump writes them (whitespace collapsed): exact forms, or kinds by their
# first words. Anything else refuses the dump.
EXACT = tuple(re.compile(p, re.I) for p in (
    r"SET (?:statement_timeout|lock_timeout|idle_in_transaction_session_timeout|transaction_timeout|"
    rf"client_min_messages|row_security|check_function_bodies|xmloption|default_tablespace|"
    rf"default_table_access_method|default_with_oids|default_transaction_read_only) = {_SETTING};",
    r"SET client_encoding = 'UTF8';", r"SET standard_conforming_strings = on;",
    r"SELECT pg_catalog\.set_config\('search_path', '', false\);",
    r"SELECT pg_catalog\.setval\('[^']{1,400}', -?[0-9]{1,20}, (?:true|false)\);",
    r"SELECT pg_catalog\.lo_create\('[0-9]{1,10}'\);", r"SELECT pg_catalog\.lo_open\('[0-9]{1,10}', 131072\);",
    r"SELECT pg_catalog\.lowrite\(0, '\\x[0-9a-f]*'\);", r"SELECT pg_catalog\.lo_close\(0\);",
    r"SELECT pg_catalog\.lo_unlink\(oid\) FROM pg_catalog\.pg_largeobject_metadata WHERE oid = '[0-9]{1,10}';",
    r"BEGIN;", r"COMMIT;"))
KINDS = re.compile(
    r"(?:CREATE (?:TABLE|UNLOGGED TABLE|SEQUENCE|(?:OR REPLACE )?VIEW|MATERIALIZED VIEW|(?:UNIQUE )?INDEX|"
    r"(?:CONSTRAINT )?TRIGGER|TYPE|DOMAIN|(?:OR REPLACE )?(?:FUNCTION|PROCEDURE)|SCHEMA|EXTENSION)|"
    r"ALTER (?:TABLE|SEQUENCE|VIEW|MATERIALIZED VIEW|INDEX|FUNCTION|PROCEDURE|TYPE|DOMAIN|SCHEMA|LARGE OBJECT|"
    r"DEFAULT PRIVILEGES)|"
    r"DROP (?:TABLE|SEQUENCE|VIEW|MATERIALIZED VIEW|INDEX|TRIGGER|FUNCTION|PROCEDURE|TYPE|DOMAIN|SCHEMA|"
    r"EXTENSION)|COMMENT ON|GRANT|REVOKE)\b", re.I)
COPY_IN = re.compile(rf"COPY {_QNAME}(?: \((?:[^()]|\(\))*\))? FROM stdin;", re.I)
# A --create dump's header (before its \connect): the database's own statements, which the restore does itself.
HEADER = tuple(re.compile(p, re.I) for p in (
    rf"DROP DATABASE IF EXISTS {_ID};", rf"CREATE DATABASE {_ID} WITH [^;]*;", rf"ALTER DATABASE {_ID} OWNER TO {_ID};",
    rf"COMMENT ON DATABASE {_ID} IS '[^']*';"))
RESTRICT = re.compile(r"\\(un)?restrict [A-Za-z0-9]{1,100}")
CONNECT = re.compile(r"\\connect [a-z_][a-z0-9_]{0,62}")


class Refused(Exception):
    """A dump holds something no restore may run; the message names the line."""


class Scanner:
    """Reads a plain dump's bytes as psql would and raises :class:`Refused` at the first thing it must not run.

    ``roles``: the dump starts with a roles part (``roles+pg_dump``), up to pg_dumpall's completion line;
    ``only_roles``: it is one (a directory dump's roles.sql). ``create``: a ``--create`` dump (a local
    server's), whose database header (:data:`HEADER`) must end with one ``\\connect`` to the database.
    """

    def __init__(self, roles: bool = False, create: bool = False, only_roles: bool = False):
        self.line = 0
        self.in_roles = roles or only_roles
        self.only_roles = only_roles
        self.create = create and not only_roles
        self.connected = False
        self.pending = b""
        self.copy = False  # inside COPY data
        self.skip_line = False  # the rest of an over-long COPY data line
        self.stmt: list[str] = []
        self.stmt_len = 0
        self.stmt_line = 0
        self.state: tuple = ("code",)  # code | quote (E: bool) | ident | dollar (tag) | block (depth)
        self.parens = 0

    def _refuse(self, why: str, line: int | None = None) -> None:
        raise Refused(f"line {line or self.line}: {why}")

    def feed(self, data: bytes) -> None:
        """Read the next bytes of the dump."""
        data = self.pending + data
        start = 0
        while True:
            if self.copy and not self.skip_line:
                start = self._skip_copy(data, start)
            end = data.find(b"\n", start)
            if end < 0:
                break
            self._line(data[start:end])
            start = end + 1
        self.pending = data[start:]
        if self.copy and len(self.pending) > 2:  # a long data line: only its start matters (is it \.?)
            if not self.skip_line:
                self.line += 1
                self._copy_line(self.pending)
            self.skip_line, self.pending = True, b""
        elif len(self.pending) > MAX_STATEMENT:
            self.line += 1
            self._refuse(f"a line longer than {MAX_STATEMENT >> 20} MiB")

    def close(self) -> None:
        """The end of the dump: nothing may be left open."""
        if self.pending:
            self._line(self.pending)
            self.pending = b""
        if self.copy:
            self._refuse("the dump ends inside COPY data")
        if self.stmt and "".join(self.stmt).strip():
            self._refuse("the dump ends inside a statement", self.stmt_line)
        if self.state[0] != "code":
            self._refuse("the dump ends inside a quoted string or comment")
        if self.create and not self.connected:
            self._refuse("no \\connect: a local server's dump is a pg_dump --create, whose header ends with one")

    def _skip_copy(self, data: bytes, start: int) -> int:
        """In COPY data at the start of a line: on to the next line that starts with a backslash and a dot (the
        rest is data, whatever it holds), counting the lines passed."""
        if data.startswith(b"\\.", start):
            return start
        found = data.find(b"\n\\.", start)
        end = found if found >= 0 else data.rfind(b"\n", start)
        if end < 0:
            return start
        self.line += data.count(b"\n", start, end + 1)
        return end + 1

    def _copy_line(self, raw: bytes) -> None:
        if raw == b"\\.":
            self.copy = False
        elif raw.startswith(b"\\."):
            self._refuse("a COPY data line that starts like its end (\\.) but is not")

    def _line(self, raw: bytes) -> None:
        if self.skip_line:  # the end of a long COPY data line
            self.skip_line = False
            return
        self.line += 1
        if self.copy:
            self._copy_line(raw)
            return
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            self._refuse("not UTF-8 (pg_dump writes MAAS's database as UTF-8)")
        if self.in_roles:
            self._role_line(text)
            return
        self._sql(text + "\n")

    def _role_line(self, text: str) -> None:
        if text == layouts.DUMPALL_COMPLETE_LINE:
            self.in_roles = self.only_roles
            return
        if not text or text.startswith("--") or RESTRICT.fullmatch(text) or text in ROLES_SETTINGS:
            return
        if any(re.fullmatch(p, text) for p in ROLE_LINES + SUPERUSER_LINES) and not any(
                re.search(p, text) for p in RESERVED_ROLES):
            return
        self._refuse(f"the roles part may only create roles and set their options and hashed passwords, never "
                     f"superuser, role creation, replication or row-security bypass for a role but "
                     f"{SUPERUSER}: {text[:100]!r}")

    def _sql(self, text: str) -> None:
        """Lex one line of SQL (with its newline) as psql does."""
        i, n = 0, len(text)
        if not "".join(self.stmt).strip():
            self.stmt_line = self.line
        while i < n:
            kind = self.state[0]
            if kind == "code":
                i = self._code(text, i)
            elif kind == "quote":
                i = self._until(text, i, _E_QUOTE_END if self.state[1] else _QUOTE_END)
            elif kind == "ident":
                i = self._until(text, i, _IDENT_END)
            elif kind == "dollar":
                j = text.find(self.state[1], i)
                if j >= 0:
                    j += len(self.state[1])
                    self.state = ("code",)
                self._add(text[i:j if j >= 0 else n])
                i = j if j >= 0 else n
            else:  # a block comment, nested as PostgreSQL nests them; never sent, as psql sends it (inert)
                m = _BLOCK.search(text, i)
                if not m:
                    return
                depth = self.state[1] + (1 if m.group(0) == "/*" else -1)
                self.state = ("block", depth) if depth else ("code",)
                i = m.end()
            if i < 0:  # the line ended a statement that starts COPY data, or was a meta-command
                return

    def _code(self, text: str, i: int) -> int:
        """Lex from ``text[i]`` outside quotes; returns where to go on (-1: the rest of the line is done)."""
        c = text[i]
        if c == "\\":
            self._meta(text, i)
            return -1
        if c == "-" and text.startswith("--", i):  # a line comment: the rest of the line
            self._add(" ")
            return len(text)
        if c == "/" and text.startswith("/*", i):
            self.state = ("block", 1)
            self._add(" ")
            return i + 2
        if c == "$" and (i == 0 or not _ident_char(text[i - 1])):
            m = _DOLLAR.match(text, i)
            if m:
                self.state = ("dollar", m.group(0))
                self._add(m.group(0))
                return m.end()
        if c == "'":
            self.state = ("quote", i > 0 and text[i - 1] in "eE" and (i < 2 or not _ident_char(text[i - 2])))
        elif c == '"':
            self.state = ("ident",)
        elif c == "(":
            self.parens += 1
        elif c == ")":
            self.parens = max(0, self.parens - 1)
        self._add(c)
        if c == ";" and self.parens == 0:
            return -1 if self._statement(text[i + 1:]) else i + 1
        return i + 1

    def _until(self, text: str, i: int, end: re.Pattern) -> int:
        """Inside a quoted string or identifier: up to and with its closing quote (or the whole line)."""
        m = end.match(text, i)
        if m:
            self.state = ("code",)
            self._add(text[i:m.end()])
            return m.end()
        self._add(text[i:])
        return len(text)

    def _add(self, s: str) -> None:
        self.stmt.append(s)
        self.stmt_len += len(s)
        if self.stmt_len > MAX_STATEMENT:
            self._refuse(f"a statement longer than {MAX_STATEMENT >> 20} MiB", self.stmt_line)

    def _meta(self, text: str, i: int) -> None:
        line = text.rstrip("\n")
        if i == 0 and not "".join(self.stmt).strip():
            if RESTRICT.fullmatch(line):
                return
            if self.create and not self.connected and CONNECT.fullmatch(line):
                self.connected = True
                return
        self._refuse(f"a psql meta-command {line[i:i + 60]!r} (a dump holds SQL and COPY data, nothing psql runs)")

    def _statement(self, rest: str) -> bool:
        """A whole statement was read: refuse it unless allowed; True when COPY data follows on the next line."""
        text = " ".join("".join(self.stmt).split())
        line = self.stmt_line
        self.stmt, self.stmt_len, self.stmt_line = [], 0, self.line + 1
        forbidden = FORBIDDEN_WORDS.search(text)
        if forbidden:
            self._refuse(f"{forbidden.group(0)!r} in {text[:80]!r} (no dump of MAAS's database holds it)", line)
        if any(p.fullmatch(text) for p in EXACT):
            return False
        in_header = self.create and not self.connected
        if in_header:
            if not any(p.fullmatch(text) for p in HEADER):
                self._refuse(f"{text[:80]!r} before the dump's \\connect, where pg_dump --create writes only the "
                             "database's own statements", line)
            return False
        if COPY_IN.fullmatch(text):
            if rest.strip():
                self._refuse("more after COPY ... FROM stdin; on its line", line)
            self.copy = True
            return True
        if not KINDS.match(text):
            self._refuse(f"{text[:80]!r} is no statement pg_dump writes for MAAS's database", line)
        self._kind_rules(text, line)
        return False

    def _kind_rules(self, text: str, line: int) -> None:
        head = text.upper()
        if re.match(r"CREATE (OR REPLACE )?(FUNCTION|PROCEDURE)\b", head):
            langs = {m.lower().strip('"') for m in re.findall(r"\bLANGUAGE\s+(\S+?)(?=[\s;]|$)", _unquoted(text), re.I)}
            if not langs or not langs <= set(LANGUAGES):
                self._refuse(f"a function in language {', '.join(sorted(langs)) or '(none)'}: only "
                             f"{' and '.join(LANGUAGES)} are loaded", line)
        if re.match(r"(CREATE|DROP) EXTENSION\b", head):
            m = re.match(rf"(?:CREATE|DROP) EXTENSION (?:IF (?:NOT )?EXISTS )?({_ID})", text, re.I)
            name = m.group(1).strip('"') if m else ""
            if name not in EXTENSIONS:
                self._refuse(f"extension {name[:40]!r}: only {', '.join(EXTENSIONS)} may be created", line)
        if re.match(r"(GRANT|REVOKE)\b", head) and not re.match(r"(GRANT|REVOKE) [^;]*? ON ", _unquoted(text), re.I):
            self._refuse(f"{text[:80]!r}: a role membership, which only the roles part may grant", line)


_QUOTE_END = re.compile(r"(?:[^']|'')*'(?!')")
_E_QUOTE_END = re.compile(r"(?:[^'\\]|\\.|'')*'(?!')", re.S)
_IDENT_END = re.compile(r'(?:[^"]|"")*"(?!")')
_DOLLAR = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_BLOCK = re.compile(r"/\*|\*/")


def _ident_char(c: str) -> bool:
    return c.isalnum() or c in "_$" or ord(c) > 127


def _unquoted(text: str) -> str:
    """``text`` with dollar-quoted bodies and string literals emptied (where LANGUAGE and ON clauses are read)."""
    text = re.sub(r"(\$[A-Za-z_0-9]*\$).*?\1", "$$", text, flags=re.S)
    return re.sub(r"'(?:[^']|'')*'", "''", text)


def scan(src: BinaryIO, scanner: Scanner, chunk: int = 1 << 20, each: Callable[[bytes], None] | None = None) -> None:
    """Feed ``src`` to ``scanner`` to its end (and each chunk to ``each``); Refused at the first bad line."""
    while data := src.read(chunk):
        if each:
            each(data)
        scanner.feed(data)
    scanner.close()


def role_filter() -> Cmd:
    """On the host: stdin's roles part, reduced to the lines of ROLE_LINES (the superuser's never)."""
    patterns = Cmd(*(Cmd("-e", Q(f"^{p}$")) for p in ROLE_LINES))
    superuser = Cmd(*(Cmd("-e", Q(f"^{p}$")) for p in SUPERUSER_LINES), *(Cmd("-e", Q(p)) for p in RESERVED_ROLES))
    return Cmd("{ grep -E", patterns, "|| true; } | { grep -v -E", superuser, "|| true; }")
