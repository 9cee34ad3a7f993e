"""One tar parser for every archive maasops reads, strict, and the writer of the archives a restore sends.

Python's ``tarfile`` and GNU tar disagree on archives a hostile controller can write:
``tarfile`` stops, silently, at the first header it cannot read after offset 0, where GNU
tar extracts that member and all after it; a pax header with both ``GNU.sparse.name``
and ``path`` names a different file for each. So maasops reads archives with
:class:`TarReader`, which understands exactly what GNU tar writes with ``--create``
(GNU or POSIX format: regular files, directories, symbolic and hard links, devices and
fifos, GNU long names, pax ``path``/``linkpath``/sizes/ids/names/times) and refuses
anything else, naming the byte offset:

- a header whose checksum is wrong or one of whose numeric fields is no number;
- a type flag other than those (sparse files, volume labels, global pax headers ...);
- a pax keyword other than those (``GNU.sparse.*`` among them), or a pax or long-name
  header of more than MAX_HEADER bytes (checked before it is read);
- a header that stands for nothing (a pax or long-name header not followed by a member);
- a name twice (GNU tar keeps the last member of a name, a reader that stops at the first sees another);
- an archive cut short, a lone zero block, or any byte after the end that is not zero
  (more than MAX_TRAILING of those).

A restore never sends a set's archive as it is: it sends what :func:`header` writes
(GNU format, GNU tar's own) for the members it accepted (:mod:`maasops.confine`), so
the controller's tar only ever reads bytes this module produced.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

from maasops.errors import Unsafe

BLOCK = 512
MAX_HEADER = 64 * 1024  # the most a pax or GNU long-name header may hold
MAX_TRAILING = 16 << 20  # zero bytes after the end marker (GNU tar pads to its record size: 10 KiB by default)
RECORD = 20 * BLOCK
END = b"\0" * (2 * BLOCK)
KINDS = {b"0": "file", b"1": "hardlink", b"2": "symlink", b"5": "dir", b"3": "chardev", b"4": "blockdev",
         b"6": "fifo"}
TYPEFLAGS = {kind: flag for flag, kind in KINDS.items()}
PAX_NUMBERS = ("size", "uid", "gid")
PAX_TIMES = ("mtime", "atime", "ctime")
PAX_KEYS = ("path", "linkpath", "uname", "gname", *PAX_NUMBERS, *PAX_TIMES)
PAX_TIME = re.compile(r"^-?[0-9]{1,20}(\.[0-9]{1,9})?$")
GNU_MAGIC, POSIX_MAGIC = b"ustar  \0", b"ustar\x0000"


class Malformed(Unsafe):
    """Bytes that are not an archive maasops fully understands; the message says where and why."""


@dataclass(frozen=True)
class Header:
    """One member as the archive describes it (``kind``: file, dir, symlink, hardlink, chardev, blockdev, fifo)."""

    name: str
    kind: str
    mode: int
    uid: int
    gid: int
    user: str
    group: str
    mtime: int
    size: int = 0
    link: str = ""


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes, what: str, at: int) -> int:
    if field[:1] == b"\x80":  # GNU base-256, positive
        return int.from_bytes(field[1:], "big")
    digits = field.rstrip(b"\0 ").lstrip(b" ")
    if not all(0x30 <= c <= 0x37 for c in digits):
        raise Malformed(f"the header at byte {at}: its {what} field {field!r} is no octal number")
    return int(digits, 8) if digits else 0


def _checked(block: bytes, at: int) -> None:
    want = _number(block[148:156], "checksum", at)
    if sum(block[:148]) + 8 * 32 + sum(block[156:]) != want:
        raise Malformed(f"the header at byte {at}: its checksum is wrong (damaged, or not a tar header)")
    if block[257:265] not in (GNU_MAGIC, POSIX_MAGIC):
        raise Malformed(f"the header at byte {at}: no ustar or GNU magic ({block[257:265]!r})")
    if block[257:265] == GNU_MAGIC and block[482] not in (0, 0x30):
        raise Malformed(f"the header at byte {at}: a GNU sparse extension")


def _pax(data: bytes, at: int) -> dict[str, str]:
    """The records of a pax extended header ("LEN KEY=VALUE\\n" each), only those GNU tar --create writes."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        length = data[pos:space]
        if space < 0 or not length.isdigit() or int(length) <= space - pos + 1:
            raise Malformed(f"the pax header at byte {at}: a record without its length")
        end = pos + int(length)
        record = data[space + 1:end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise Malformed(f"the pax header at byte {at}: a record cut short")
        key, value = record[:-1].split(b"=", 1)
        name = key.decode("ascii", "replace")
        if name not in PAX_KEYS:
            raise Malformed(f"the pax header at byte {at}: keyword {name[:40]!r} is not one maasops reads "
                            "(GNU tar and Python read some differently: GNU.sparse.* among them)")
        if name in out:
            raise Malformed(f"the pax header at byte {at}: keyword {name!r} twice")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed(f"the pax header at byte {at}: {name} is not UTF-8") from None
        if (name in PAX_NUMBERS and not text.isdigit()) or (name in PAX_TIMES and not PAX_TIME.match(text)):
            raise Malformed(f"the pax header at byte {at}: {name}={text[:30]!r} is no number")
        out[name] = text
        pos = end
    return out


class TarReader:
    """Members of an uncompressed tar stream, one pass; iterate for each :class:`Header`, :meth:`read` its bytes.

    Anything it does not fully understand raises :class:`Malformed`; so does an archive that does not end
    with its end marker followed by nothing but zeros.
    """

    def __init__(self, src: BinaryIO):
        self._src = src
        self.offset = 0  # bytes consumed
        self._left = 0  # bytes of the current member not yet read
        self._pad = 0
        self._names: set[str] = set()

    def _exact(self, n: int) -> bytes:
        parts, want = [], n
        while want:
            data = self._src.read(want)
            if not data:
                raise Malformed(f"the archive is cut short at byte {self.offset + n - want}")
            parts.append(data)
            want -= len(data)
        self.offset += n
        return b"".join(parts)

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current member's data (b'' at its end)."""
        data = self._exact(min(n, self._left)) if self._left else b""
        self._left -= len(data)
        return data

    def _skip(self) -> None:
        while self.read(1 << 20):
            pass
        self._exact(self._pad)
        self._pad = 0

    def _extension(self, size: int, what: str, at: int) -> bytes:
        if size > MAX_HEADER:
            raise Malformed(f"the {what} header at byte {at} is {size} bytes long, more than the "
                            f"{MAX_HEADER} maasops reads")
        data = self._exact(size)
        self._exact(-size % BLOCK)
        return data

    def _trailer(self) -> None:
        at = self.offset
        if self._exact(BLOCK).count(0) != BLOCK:
            raise Malformed(f"a lone zero block at byte {at - BLOCK}, then more bytes")
        extra = 0
        while data := self._src.read(1 << 16):
            extra += len(data)
            if data.count(0) != len(data):
                raise Malformed(f"bytes that are not zeros after the archive's end (byte {self.offset})")
            if extra > MAX_TRAILING:
                raise Malformed(f"more than {MAX_TRAILING} bytes after the archive's end (byte {self.offset})")
        self.offset += extra

    def __iter__(self) -> Iterator[Header]:
        ext: dict[str, str] = {}
        pending: set[bytes] = set()
        while True:
            self._skip()
            at = self.offset
            block = self._exact(BLOCK)
            if block.count(0) == BLOCK:
                if pending:
                    raise Malformed(f"the archive ends right after an extended header (byte {at})")
                self._trailer()
                return
            _checked(block, at)
            flag = block[156:157]
            size = _number(block[124:136], "size", at)
            if flag in (b"x", b"L", b"K"):
                if flag in pending:
                    raise Malformed(f"the header at byte {at}: a second {flag.decode()} header for one member")
                pending.add(flag)
                data = self._extension(size, "pax" if flag == b"x" else "long-name", at)
                if flag == b"x":
                    ext.update(_pax(data, at))
                else:
                    ext["path" if flag == b"L" else "linkpath"] = _text(data)
                continue
            h = self._member(block, flag, size, ext, at)
            if h.name in self._names:
                raise Malformed(f"/{h.name[:120]}: in the archive twice (GNU tar keeps the last, a reader that stops "
                                "at the first sees another)")
            self._names.add(h.name)
            yield h
            ext, pending = {}, set()

    def _member(self, block: bytes, flag: bytes, size: int, ext: dict[str, str], at: int) -> Header:
        kind = KINDS.get(flag)
        if kind is None:
            raise Malformed(f"the header at byte {at}: type flag {flag!r} is not one maasops reads")
        name = _text(block[0:100])
        if block[257:265] == POSIX_MAGIC and block[345] != 0:
            name = _text(block[345:500]) + "/" + name
        size = int(ext.get("size", size))
        if kind != "file" and size:
            raise Malformed(f"the header at byte {at}: a {kind} with {size} bytes of data")
        for what, lo, hi in (("devmajor", 329, 337), ("devminor", 337, 345), ("mtime", 136, 148)):
            _number(block[lo:hi], what, at)
        h = Header(ext.get("path", name), kind, _number(block[100:108], "mode", at),
                   int(ext.get("uid", _number(block[108:116], "uid", at))),
                   int(ext.get("gid", _number(block[116:124], "gid", at))),
                   ext.get("uname", _text(block[265:297])), ext.get("gname", _text(block[297:329])),
                   int(float(ext.get("mtime", _number(block[136:148], "mtime", at)))), size,
                   ext.get("linkpath", _text(block[157:257])))
        if kind == "dir":
            h = replace(h, name=h.name.rstrip("/") or h.name)
        self._left, self._pad = size, -size % BLOCK
        return h


def header(h: Header) -> bytes:
    """The GNU-format header block(s) GNU tar reads as ``h`` (long names in GNU long-name headers)."""
    t = tarfile.TarInfo(h.name)
    t.type, t.mode, t.uid, t.gid, t.uname, t.gname = TYPEFLAGS[h.kind], h.mode, h.uid, h.gid, h.user, h.group
    t.mtime, t.size, t.linkname = h.mtime, h.size if h.kind == "file" else 0, h.link
    return t.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def padding(size: int) -> bytes:
    """The zeros that follow ``size`` bytes of member data."""
    return b"\0" * (-size % BLOCK)


def end(written: int) -> bytes:
    """The end marker after ``written`` bytes of archive, padded to a whole record as GNU tar writes it."""
    return END + b"\0" * (-(written + len(END)) % RECORD)
