"""What a restore may write: every archive member checked against the layout table, never against the set.

A backup set may have been tampered with (see docs/dr-drill.md, "Trusting a backup
set"), and a set signed by a trusted key holds whatever a controller streamed when
it was taken. Before anything on a controller stops, every member of an archive that
goes up is read on the laptop by maasops's one strict tar parser
(:mod:`maasops.tarstream`) and checked against rules that come from the layout of
the *target* (its install type and version):

- regular files, directories, symbolic links and hard links only (no devices,
  fifos or sockets);
- a relative name with no ``.`` or ``..`` part, inside one of the layout's trees, never
  twice in one archive; a tree itself is never a symbolic link;
- no setuid, setgid or sticky bit;
- owner and group among the owners the layout gives the member's tree (root, maas; on a deb rack
  /var/lib/maas/dhcp also dhcpd);
- a symbolic link that leads into the trees once it is resolved through the
  archive's own links, as the host would (:func:`resolve`: a chain such as
  ``l2 -> .`` then ``x -> l2/../issue`` leads out), and nothing below a symbolic
  link; a hard link only to a regular file of the archive;
- every member's directory is itself in the archive (or is above the trees), so
  nothing is created with a mode of tar's choosing;
- every member as the signed manifest lists it (bytes, mode, owner).

The first violation refuses the whole set, naming the member. What goes up is not
the set's archive but the laptop's own re-writing of the members it accepted
(:func:`emitted`), so the controller's tar only ever reads bytes maasops wrote: the
two parsers cannot disagree. The host prints the sha256 of what it received, and
after the extraction it lists what it wrote (:func:`listing_command`), which the
laptop compares with the members (:func:`extracted_judge`) before the commit. The
controller's ``tar`` is the last wall (:func:`extract_command`): it extracts only the
trees' names, strips special bits, never writes outside its directory and restores
directory modes last.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from maasops import backupset, compression, tarstream
from maasops import manifest as mf
from maasops.command import Cmd, Q
from maasops.errors import Damaged, Unsafe
from maasops.manifest import Member

SPECIAL_BITS = 0o7000
MAX_HOPS = 40  # symbolic links followed to resolve one path (the kernel's own bound)
KINDS = ("file", "dir", "symlink", "hardlink")


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
    names: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)  # name -> target


@dataclass(frozen=True)
class Entry:
    """One member, whatever it was read from (a tar header, a manifest listing)."""

    name: str
    kind: str  # file | dir | symlink | hardlink | anything else (a device, a fifo)
    mode: int
    user: str
    group: str
    link: str = ""


class _Escapes(Exception):
    """A path that leaves the trees while it is resolved (the message says how)."""


def _inside(name: str, roots: Iterable[str]) -> bool:
    return any(name == r or name.startswith(r + "/") for r in roots)


def resolve(path: str, links: Mapping[str, str], roots: tuple[str, ...]) -> str:
    """Where ``path`` (no leading /) leads once the archive's ``links`` (name -> target) are on the host: every
    component followed through them, as the kernel would, at most MAX_HOPS links.

    A ``..`` may only step back within the trees: above them the host's own directories (its symbolic
    links among them) decide where it leads, and no check on the laptop can see those.
    """
    todo, done, hops = path.split("/"), [], 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not _inside("/".join(done[:-1]), roots):
                raise _Escapes(f"its '..' climbs out of /{'/'.join(done)}")
            done.pop()
            continue
        done.append(part)
        target = links.get("/".join(done))
        if target is not None:
            hops += 1
            if hops > MAX_HOPS:
                raise _Escapes(f"more than {MAX_HOPS} symbolic links (a loop)")
            done = [] if target.startswith("/") else done[:-1]
            todo = target.split("/") + todo
    return "/".join(done)


def _check_name(e: Entry, rules: Rules, seen: _Seen) -> None:
    name = e.name
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise Violation(f"{name[:120]!r}: not a plain relative name (absolute, empty, '.' or '..' parts)")
    if not _inside(name, rules.roots):
        trees = ", ".join("/" + r for r in rules.roots)
        raise Violation(f"/{name[:120]}: outside the trees a restore may write ({trees})")
    if name in seen.names:
        raise Violation(f"/{name[:120]}: in the archive twice (GNU tar keeps the last, a reader that stops at "
                        "the first sees another)")
    if name in rules.roots and e.kind == "symlink":
        raise Violation(f"/{name}: a tree of the layout that is a symbolic link")


def _check_link(name: str, link: str, links: Mapping[str, str], rules: Rules) -> None:
    """Violation unless the symbolic link ``name`` -> ``link`` leads into the trees, through ``links`` too."""
    start = link if link.startswith("/") else posixpath.dirname(name) + "/" + link
    try:
        where = resolve(start, links, rules.roots)
        why = f"it leads to /{where}"
    except _Escapes as exc:
        where, why = "", str(exc)
    if not link or not _inside(where, rules.roots):
        raise Violation(f"/{name}: a symbolic link to {link[:120]!r}, outside the trees ({why[:160]})")


def _check_kind(e: Entry, rules: Rules, seen: _Seen) -> None:
    if e.kind not in KINDS:
        raise Violation(f"/{e.name}: a {e.kind} (device, fifo or socket): only files, directories and links")
    if e.mode & SPECIAL_BITS:
        raise Violation(f"/{e.name}: mode {e.mode:04o} has a setuid, setgid or sticky bit")
    owners = rules.owners_of(e.name)
    if e.user not in owners or e.group not in owners:
        raise Violation(f"/{e.name}: owned by {e.user or '?'}:{e.group or '?'}, not by "
                        f"{' or '.join(sorted(owners))}")
    if e.kind == "symlink":
        seen.links[e.name] = e.link  # a link to itself is a loop
        _check_link(e.name, e.link, seen.links, rules)
    if e.kind == "hardlink" and e.link not in seen.files:
        raise Violation(f"/{e.name}: a hard link to {e.link[:120]!r}, which is no regular file of the archive")


def _check_place(e: Entry, rules: Rules, seen: _Seen) -> None:
    parts = e.name.split("/")
    under = next((p for p in ("/".join(parts[:i]) for i in range(1, len(parts))) if p in seen.links), None)
    if under:
        raise Violation(f"/{e.name}: below the symbolic link /{under}")
    parent = posixpath.dirname(e.name)
    if e.name not in rules.roots and parent not in seen.dirs:
        raise Violation(f"/{e.name}: its directory /{parent} is not in the archive before it")


def check(e: Entry, rules: Rules, seen: _Seen) -> None:
    """Raise Violation when ``e`` may not be written (``seen`` holds what came before it)."""
    _check_name(e, rules, seen)
    _check_kind(e, rules, seen)
    _check_place(e, rules, seen)
    seen.names.add(e.name)
    if e.kind == "dir":
        seen.dirs.add(e.name)
    elif e.kind == "file":
        seen.files.add(e.name)


def finish(rules: Rules, seen: _Seen) -> None:
    """Once every member was checked: each symbolic link must still lead into the trees with all the archive's
    links in place (a chain such as ``l2 -> .`` then ``x -> l2/../issue``, in any order)."""
    for name, link in seen.links.items():
        _check_link(name, link, seen.links, rules)


def _entry(h: tarstream.Header) -> Entry:
    return Entry(h.name, h.kind, h.mode, h.user, h.group, h.link)


def emitted(src: BinaryIO, compress: str, rules: Rules, listing: tuple[Member, ...], sha256: str) -> Iterator[bytes]:
    """The archive a restore sends, re-written by maasops from ``src`` (a set's archive, compressed as
    ``compress``), member by member as each passes the rules and matches the manifest's ``listing``.

    The controller's tar thus only reads bytes maasops wrote (:mod:`maasops.tarstream`), of members it
    checked. Raises :class:`Violation` (or tarstream.Malformed) for a member the restore must not write,
    :class:`~maasops.errors.Damaged` when ``src``'s bytes are not those of ``sha256``; the end marker
    comes only after the whole archive passed.
    """
    raw = backupset.HashingReader(src)
    buffered = io.BufferedReader(raw, backupset.CHUNK)
    written = 0
    try:
        seen = _Seen()
        tar = tarstream.TarReader(io.BufferedReader(compression.reader(buffered, compress), backupset.CHUNK))
        for i, h in enumerate(tar):
            check(_entry(h), rules, seen)
            head = tarstream.header(h)
            written += len(head) + h.size + len(tarstream.padding(h.size))
            yield head
            digest = hashlib.sha256()
            while chunk := tar.read(backupset.CHUNK):
                digest.update(chunk)
                yield chunk
            yield tarstream.padding(h.size)
            got = mf.Member(**backupset.listed(h, digest.hexdigest() if h.kind == "file" else None))
            if i >= len(listing) or got != listing[i]:
                raise Violation(f"/{h.name[:120]}: not as the manifest lists it (the archive and its listing "
                                "differ)")
        finish(rules, seen)
        if len(seen.names) != len(listing):
            raise Violation(f"the archive holds {len(seen.names)} members, its manifest lists {len(listing)}")
    except (tarstream.Malformed, *compression.ERRORS) as exc:
        if _drained(raw, buffered) != sha256:
            raise Damaged() from None
        if isinstance(exc, tarstream.Malformed):
            raise
        raise tarstream.Malformed(f"the archive cannot be decompressed: {exc}") from None
    if _drained(raw, buffered) != sha256:
        raise Damaged()
    yield tarstream.end(written)


def _drained(raw: backupset.HashingReader, buffered: BinaryIO) -> str:
    while buffered.read(backupset.CHUNK):
        pass
    return raw.digest.hexdigest()


def emitted_size(listing: Iterable[Member]) -> int:
    """The most bytes :func:`emitted` writes for an archive of ``listing`` (what a restore's upload takes on the
    host): a header per member, GNU long-name headers for long names, the data in whole blocks, the end."""
    def blocks(n: int) -> int:
        return -(-n // tarstream.BLOCK) * tarstream.BLOCK
    total = tarstream.RECORD + len(tarstream.END)
    for m in listing:
        name, link = len(m.path.encode()), len((m.link or "").encode())
        total += tarstream.BLOCK + blocks(m.size or 0) + sum(
            tarstream.BLOCK + blocks(n + 1) for n in (name, link) if n >= 100)
    return total


def emitter(compress: str, rules: Rules, listing: tuple[Member, ...],
            sha256: str) -> Callable[[BinaryIO], Iterator[bytes]]:
    """An upload's re-emitter (:func:`emitted`) for one archive of a set."""
    return lambda src: emitted(src, compress, rules, listing, sha256)


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
    try:
        finish(rules, seen)
    except Violation as exc:
        problems.append(str(exc))
    return problems


def listing_command(trees: tuple[str, ...], leftovers: str) -> Cmd:
    """What is under ``trees`` on the host (but restores' ``leftovers``), without following a link: for each,
    NUL-terminated, its type, owner, group, mode, link target and path (GNU find)."""
    prune = [Cmd("-path", Q(f"{t}/{leftovers}"), "-prune -o") for t in trees]
    return Cmd("find", *map(Q, trees), *prune, "-printf", Q("%y\\0%u\\0%g\\0%m\\0%l\\0%p\\0"))


def _found(out: str) -> dict[str, tuple[str, ...]]:
    fields = out.split("\0")
    if len(fields) % 6 != 1 or fields[-1]:
        return {"(the listing)": ("garbled",)}
    return {fields[i + 5]: tuple(fields[i:i + 5]) for i in range(0, len(fields) - 1, 6)}


def _differs(m: Member, got: tuple[str, ...]) -> str | None:
    """How the host's entry ``got`` (type, owner, group, mode, link) differs from member ``m``, or None."""
    kind = {"dir": "d", "symlink": "l"}.get(m.type, "f")
    if got[0] != kind:
        return f"a {got[0]!r} on the host, a {kind!r} in the archive (find's letters)"
    if (got[1], got[2]) != (m.user, m.group):
        return f"owned by {got[1]}:{got[2]}, in the archive by {m.user}:{m.group}"
    if kind == "l" and got[4] != m.link:
        return f"a link to {got[4][:80]!r}, in the archive to {(m.link or '')[:80]!r}"
    if kind != "l" and m.type != "hardlink" and int(got[3] or "0", 8) != int(m.mode, 8) & 0o777:
        return f"mode {got[3]}, in the archive {int(m.mode, 8) & 0o777:o}"
    return None


def extracted_judge(members: tuple[Member, ...], rebase: Callable[[str], str]) -> Callable[[str], str | None]:
    """What the laptop makes of :func:`listing_command`'s output after an extraction: a problem (the first few
    differences) unless the host holds exactly ``members`` (paths through ``rebase``), each with its type,
    owner, group, permission bits and link target."""
    def judge(out: str) -> str | None:
        found = _found(out)
        problems = []
        for m in members:
            got = found.pop(rebase(m.path), None)
            why = "in the archive, not on the host" if got is None else _differs(m, got)
            if why:
                problems.append(f"{rebase(m.path)}: {why}")
        problems += [f"{p}: on the host, not in the archive" for p in sorted(found)]
        if not problems:
            return None
        return ("what the host wrote is not what the laptop checked: " + "; ".join(problems[:3])
                + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""))
    return judge


def extract_command(upload: str, members: tuple[str, ...], owners: Iterable[str], transform: str | None) -> Cmd:
    """The controller's extraction: only the trees' names, owners kept, special bits stripped, dir modes last.

    The owners must exist on the host, so tar maps names, never a number from the archive.
    """
    need = Cmd("for u in", *map(Q, sorted(owners)), "; do getent passwd \"$u\" >/dev/null && getent group \"$u\" "
               ">/dev/null || { echo \"no user or group $u on this host\" >&2; exit 1; }; done;")
    tar = Cmd("tar -x --same-owner --no-same-permissions --delay-directory-restore",
              "-f", Q(upload), "-C /", Q(f"--transform={transform}") if transform else Cmd(), "--", *map(Q, members))
    # umask 0: --no-same-permissions then drops only the special bits, never a mode bit the file had.
    return Cmd(need, "umask 0 &&", tar)
