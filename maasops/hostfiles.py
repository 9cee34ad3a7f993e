"""Small commands that change files on a host safely: records, YAML keys, private writes.

Values always travel as data: quoted for the shell, and into ``awk`` through the
environment (``ENVIRON``), never spliced into a program text such as a ``sed``
expression.
"""

from __future__ import annotations

import re

from maasops.command import Cmd, Q, Word

URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/\-]*)?$")
LABEL = r"[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^{LABEL}(\.{LABEL})*$|^[0-9.]+$|^[0-9A-Fa-f:]+$")


def record(state: str, line: str) -> Cmd:
    """Append ``line`` to the host's private record file ``state``."""
    return Cmd("(umask 077 && printf '%s\\n'", Q(line), ">>", Q(state), ")")


def recorded(state: str, line: str) -> Cmd:
    """True (exit 0) when ``state`` holds ``line`` exactly."""
    return Cmd("grep -qxF", Q(line), Q(state), "2>/dev/null")


def replace_yaml_key(path: str, key: str, block: str) -> Cmd:
    """Replace a top-level key of a YAML file (with its indented or list lines) by ``block``; keep the file's mode.

    ``block`` is the key's new text (``key: value`` or ``key:`` and ``- item`` lines); it reaches awk
    through the environment, so nothing in it is read as a program.
    """
    program = ('BEGIN { skip = 0 } '
               'skip && ($0 ~ /^[ \\t]/ || $0 ~ /^-/) { next } { skip = 0 } '
               'index($0, ENVIRON["MAASOPS_KEY"] ":") == 1 { skip = 1; next } { print } '
               'END { printf "%s", ENVIRON["MAASOPS_BLOCK"] }')
    return Cmd("t=$(mktemp", Q(path + ".XXXXXX"), ") &&", Word("MAASOPS_KEY=", Q(key)),
               Word("MAASOPS_BLOCK=", Q(block)), "awk", Q(program), Q(path), "> \"$t\" &&",
               "cat \"$t\" >", Q(path), "&& rm -f \"$t\"")


def copy_yaml_keys(src: str, dest: str, keys: tuple[str, ...]) -> Cmd:
    """Give ``dest`` the top-level ``keys`` lines ``src`` has (replacing its own); nothing when ``src`` is absent.

    The values (a password among them) go from file to file on the host: never through a command line.
    """
    program = ('BEGIN { n = split(ENVIRON["MAASOPS_KEYS"], ks, " "); for (i = 1; i <= n; i++) want[ks[i]] = 1 } '
               'FNR == NR { for (k in want) if (index($0, k ":") == 1) val[k] = $0; next } '
               '{ hit = 0; for (k in val) if (index($0, k ":") == 1) { print val[k]; seen[k] = 1; hit = 1 } '
               'if (!hit) print } END { for (k in val) if (!(k in seen)) print val[k] }')
    return Cmd("[ -f", Q(src), "] || exit 0; t=$(mktemp", Q(dest + ".XXXXXX"), ") &&",
               Word("MAASOPS_KEYS=", Q(" ".join(keys))), "awk", Q(program), Q(src), Q(dest), "> \"$t\" &&",
               "cat \"$t\" >", Q(dest), "&& rm -f \"$t\"")


def valid_url(url: str) -> bool:
    """True for an http(s) URL with nothing a YAML or shell reader could take for syntax."""
    return bool(URL.match(url))


def valid_host(host: str) -> bool:
    """True for a host name, an IPv4 or an IPv6 address."""
    return bool(HOSTNAME.match(host)) and len(host) <= 253
