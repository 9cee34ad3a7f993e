"""Small commands that change files on a host safely: records, YAML keys, private writes, uploads received.

Values always travel as data: quoted for the shell, and into ``awk`` through the
environment (``ENVIRON``), never spliced into a program text such as a ``sed``
expression.
"""

from __future__ import annotations

import re

from maasops.command import Cmd, Q, Word
from maasops.errors import DAMAGED

URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/\-]*)?$")
LABEL = r"[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^{LABEL}(\.{LABEL})*$|^[0-9.]+$|^[0-9A-Fa-f:]+$")
# sha256 of stdin as "HEX ...": OpenSSL's where the host has it (it uses the CPU's SHA instructions; coreutils'
# sha256sum, built without OpenSSL on Debian and Ubuntu, took 0.97 s for 200 MiB on the lab machine, openssl 0.23 s),
# else sha256sum (which the probe requires).
SHA256_STDIN = Cmd("if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi")


def record(state: str, line: str) -> Cmd:
    """Append ``line`` to the host's private record file ``state``."""
    return Cmd("(umask 077 && printf '%s\\n'", Q(line), ">>", Q(state), ")")


def recorded(state: str, line: str) -> Cmd:
    """True (exit 0) when ``state`` holds ``line`` exactly."""
    return Cmd("grep -qxF", Q(line), Q(state), "2>/dev/null")


def no_links(top: str, path: str) -> Cmd:
    """Fails, naming it, when ``path`` or a directory from ``top`` down to it is a symbolic link: a root write
    there would follow the link wherever it leads (a restored tree's links are the set's)."""
    rel = path[len(top):].strip("/").split("/") if path != top else []
    chain = [top] + [top + "/" + "/".join(rel[:i + 1]) for i in range(len(rel))]
    return Cmd("for p in", *map(Q, chain), "; do if [ -L \"$p\" ]; then echo \"$p is a symbolic link: a root write "
               "through it is refused\" >&2; exit 1; fi; done;")


def _rewrite(top: str, path: str, program: str, inputs: tuple[str, ...], env: tuple[Word, ...]) -> Cmd:
    """Replace ``path`` by what awk ``program`` prints from ``inputs``, keeping its owner and mode: written to a
    temporary file beside it, then renamed over it (``mv -T``), never through a symbolic link."""
    return Cmd(no_links(top, path), "t=$(mktemp", Q(path + ".XXXXXX"), ") && {", *env, "awk", Q(program),
               *map(Q, inputs), "> \"$t\" && chown", Word("--reference=", Q(path)), "\"$t\" && chmod",
               Word("--reference=", Q(path)), "\"$t\" && mv -T -f \"$t\"", Q(path), "|| { rm -f \"$t\"; exit 1; }; }")


def replace_yaml_key(top: str, path: str, key: str, block: str) -> Cmd:
    """Replace a top-level key of a YAML file (with its indented or list lines) by ``block``; keep the file's mode.

    ``block`` is the key's new text (``key: value`` or ``key:`` and ``- item`` lines); it reaches awk
    through the environment, so nothing in it is read as a program. ``path`` is in the tree ``top``; no
    link from there to it is followed (:func:`no_links`).
    """
    program = ('BEGIN { skip = 0 } '
               'skip && ($0 ~ /^[ \\t]/ || $0 ~ /^-/) { next } { skip = 0 } '
               'index($0, ENVIRON["MAASOPS_KEY"] ":") == 1 { skip = 1; next } { print } '
               'END { printf "%s", ENVIRON["MAASOPS_BLOCK"] }')
    return _rewrite(top, path, program, (path,), (Word("MAASOPS_KEY=", Q(key)), Word("MAASOPS_BLOCK=", Q(block))))


def copy_yaml_keys(top: str, src: str, dest: str, keys: tuple[str, ...]) -> Cmd:
    """Give ``dest`` (in the tree ``top``) the top-level ``keys`` lines ``src`` has (replacing its own); nothing
    when ``src`` is absent.

    The values (a password among them) go from file to file on the host: never through a command line.
    """
    program = ('BEGIN { n = split(ENVIRON["MAASOPS_KEYS"], ks, " "); for (i = 1; i <= n; i++) want[ks[i]] = 1 } '
               'FNR == NR { for (k in want) if (index($0, k ":") == 1) val[k] = $0; next } '
               '{ hit = 0; for (k in val) if (index($0, k ":") == 1) { print val[k]; seen[k] = 1; hit = 1 } '
               'if (!hit) print } END { for (k in val) if (!(k in seen)) print val[k] }')
    return Cmd("[ -f", Q(src), "] || exit 0;", _rewrite(top, dest, program, (src, dest),
                                                          (Word("MAASOPS_KEYS=", Q(" ".join(keys))),)))


def valid_url(url: str) -> bool:
    """True for an http(s) URL with nothing a YAML or shell reader could take for syntax."""
    return bool(URL.match(url))


def valid_host(host: str) -> bool:
    """True for a host name, an IPv4 or an IPv6 address."""
    return bool(HOSTNAME.match(host)) and len(host) <= 253


def receive(dest: str, sha256: str) -> Cmd:
    """Write stdin to ``dest`` (private), hashing the bytes as they arrive, and check them against the
    manifest's sha256.

    This is where a restore reads every byte of the set: before anything stops, each
    file's bytes must be the ones the backup recorded. The hash is taken from the stream
    (tee), not by reading the file back.
    """
    return Cmd("umask 077 && sum=$(tee --", Q(dest), "|", SHA256_STDIN, ") || exit 1;",  # tee names what failed
               "[ \"${sum%% *}\" =", Q(sha256), "] || { echo", Q(DAMAGED), ">&2; exit 1; }")


def receive_emitted(dest: str) -> Cmd:
    """Write stdin (an archive the laptop re-wrote from the one it checked: maasops.confine.emitted) to ``dest``
    (private) and print the sha256 of the bytes as they arrived: the laptop compares it with what it sent."""
    return Cmd("umask 077 && tee --", Q(dest), "|", SHA256_STDIN)
