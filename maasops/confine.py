"""What a restore may write: every archive member checked against the layout table, never against the set.

A backup set may have been tampered with (see docs/dr-drill.md, "Trusting a backup
set"). Before anything on a controller stops, every member of the archive that
goes up is checked on the laptop, as its bytes stream (:func:`inspector`), against
rules that come from the layout of the *target* (its install type and version):

- regular files, directories, symbolic links and hard links only (no devices,
  fifos or sockets);
- a relative name with no ``.`` or ``..`` part, inside one of the layout's trees;
- no setuid, setgid or sticky bit;
- owner and group among the owners the layout gives the member's tree (root, maas; on a deb rack
  /var/lib/maas/dhcp also dhcpd);
- a symbolic link whose target stays inside the trees, and nothing below a
  symbolic link; a hard link only to a regular file of the archive;
- every member's directory is itself in the archive (or is above the trees), so
  nothing is created with a mode of tar's choosing.

The first violation refuses the whole set, naming the member. The controller's
``tar`` is the second wall (:func:`extract_command`): it extracts only the trees'
names, strips special bits, never writes outside its directory and restores
directory modes last.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from maasops import compression
from maasops.command import Cmd, Q
from maasops.errors import Unsafe
from maasops.manifest import Member

SPECIAL_BITS = 0o7000


class Violation(Unsafe):
    """A member the restore must not write; the message names it and the rule."""


@dataclass(frozen=True)
class Rules:
    """What may be written: member names (no leading /) of the trees, and who what lies below a name may belong
    to (most specific name first, as :meth:`maasops.layouts.Layout.owner_rules` gives them)."""

    roots: tuple[str, ...]
    owners: tuple[tuple[str, frozenset[str]], ...]

    def owners_of(self, name: str) -> frozenset[str]:
        """The users and groups member ``name`` may belong to (none outside the trees)."""
        return next((names for path, names in self.owners if _inside(name, (path,))), frozenset())


def rules(trees: Iterable[str], owner_rules: Iterable[tuple[str, frozenset[str]]],
          place: Callable[[str], str]) -> Rules:
    """Rules from layout paths, each put where the archive names it by ``place`` (a host's snap revision)."""
    return Rules(tuple(place(t).lstrip("/") for t in trees),
                 tuple((place(p).lstrip("/"), names) for p, names in owner_rules))


@dataclass
class _Seen:
    dirs: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Entry:
    """One member, whatever it was read from (a tar header, a manifest listing)."""

    name: str
    kind: str  # file | dir | symlink | hardlink | other
    mode: int
    user: str
    group: str
    link: str = ""


def _inside(name: str, roots: Iterable[str]) -> bool:
    return any(name == r or name.startswith(r + "/") for r in roots)


def _check_name(e: Entry, rules: Rules) -> None:
    name = e.name
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise Violation(f"{name[:120]!r}: not a plain relative name (absolute, empty, '.' or '..' parts)")
    if not _inside(name, rules.roots):
        trees = ", ".join("/" + r for r in rules.roots)
        raise Violation(f"/{name[:120]}: outside the trees a restore may write ({trees})")


def _check_kind(e: Entry, rules: Rules, seen: _Seen) -> None:
    if e.kind not in ("file", "dir", "symlink", "hardlink"):
        raise Violation(f"/{e.name}: a {e.kind} (device, fifo or socket): only files, directories and links")
    if e.mode & SPECIAL_BITS:
        raise Violation(f"/{e.name}: mode {e.mode:04o} has a setuid, setgid or sticky bit")
    owners = rules.owners_of(e.name)
    if e.user not in owners or e.group not in owners:
        raise Violation(f"/{e.name}: owned by {e.user or '?'}:{e.group or '?'}, not by "
                        f"{' or '.join(sorted(owners))}")
    if e.kind == "symlink":
        target = posixpath.normpath(posixpath.join("/" + posixpath.dirname(e.name), e.link)).lstrip("/")
        if not _inside(target, rules.roots):
            raise Violation(f"/{e.name}: a symbolic link to {e.link[:120]!r}, outside the trees")
    if e.kind == "hardlink" and e.link not in seen.files:
        raise Violation(f"/{e.name}: a hard link to {e.link[:120]!r}, which is no regular file of the archive")


def _check_place(e: Entry, rules: Rules, seen: _Seen) -> None:
    under = next((link for link in seen.links if e.name.startswith(link + "/")), None)
    if under:
        raise Violation(f"/{e.name}: below the symbolic link /{under}")
    parent = posixpath.dirname(e.name)
    if e.name not in rules.roots and parent not in seen.dirs:
        raise Violation(f"/{e.name}: its directory /{parent} is not in the archive before it")


def check(e: Entry, rules: Rules, seen: _Seen) -> None:
    """Raise Violation when ``e`` may not be written (``seen`` holds what came before it)."""
    _check_name(e, rules)
    _check_kind(e, rules, seen)
    _check_place(e, rules, seen)
    if e.kind == "dir":
        seen.dirs.add(e.name)
    elif e.kind == "file":
        seen.files.add(e.name)
    elif e.kind == "symlink":
        seen.links.append(e.name)


def _entry(m: tarfile.TarInfo) -> Entry:
    kind = ("file" if m.isfile() else "dir" if m.isdir() else "symlink" if m.issym() else "hardlink" if m.islnk()
            else "other")
    return Entry(m.name, kind, m.mode, m.uname, m.gname, m.linkname)


def check_archive(src: BinaryIO, compress: str, rules: Rules) -> int:
    """Check every member of a (compressed) tar stream; returns how many; Violation on the first bad one."""
    seen = _Seen()
    count = 0
    with tarfile.open(fileobj=compression.reader(src, compress), mode="r|") as tar:
        for m in tar:
            check(_entry(m), rules, seen)
            count += 1
    return count


def inspector(compress: str, rules: Rules) -> Callable[[BinaryIO], int]:
    """An upload inspector: reads the archive's bytes as they go up and checks every member."""
    return lambda src: check_archive(src, compress, rules)


def check_listing(members: Iterable[Member], rules: Rules) -> list[str]:
    """Violations in a manifest's listing (what ``verify`` reports), in the same terms."""
    seen = _Seen()
    problems = []
    for m in members:
        e = Entry(m.path.lstrip("/"), m.type, int(m.mode, 8), m.user, m.group, m.link or "")
        try:
            check(e, rules, seen)
        except Violation as exc:
            problems.append(str(exc))
    return problems


def extract_command(decompress: Cmd, upload: str, members: tuple[str, ...], owners: Iterable[str],
                    transform: str | None) -> Cmd:
    """The controller's extraction: only the trees' names, owners kept, special bits stripped, dir modes last.

    The owners must exist on the host, so tar maps names, never a number from the archive.
    """
    need = Cmd("for u in", *map(Q, sorted(owners)), "; do getent passwd \"$u\" >/dev/null || { echo \"no user $u "
               "on this host\" >&2; exit 1; }; done;")
    tar = Cmd("tar -x --same-owner --no-same-permissions --delay-directory-restore",
              "-f - -C /", Q(f"--transform={transform}") if transform else Cmd(), "--", *map(Q, members))
    # umask 0: --no-same-permissions then drops only the special bits, never a mode bit the file had.
    return Cmd(need, "umask 0 &&", decompress, Q(upload), "|", tar)
