"""The backup set on the laptop: directories, manifests, archive listings, checksums; where a set's big files
are read from.

``<backup-dir>/<deployment>/<UTC timestamp>/<host>/`` holds a host's archive,
dump and manifest.json; the set's manifest.json sits beside the host dirs.
Directories are 0700 and files 0600. A set is written as ``<timestamp>.partial``
and renamed only when every host's checksums matched, so a broken run never
looks complete.

A set's manifests are always files on this machine (a repository's are first
written into a private directory, :mod:`maasops.reposet`); its archives and
dumps are read through a :class:`SetFiles`, by their path in the set
(``<host>/<file>``): :class:`LocalFiles` for a directory on this machine (opened
following no symbolic link, its directories included), ``reposet.RepoFiles`` for
a restic repository. Verify and restore read both by the same code, streaming,
never unpacking a copy first.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import stat
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, Protocol

from maasops import compression, tarstream
from maasops.errors import TooBig, Unsafe
from maasops.plan import Send

PARTIAL = ".partial"
SET_NAME = re.compile(r"\d{8}T\d{6}Z(-\d+)?")  # what new_set names a complete set
CHUNK = 1 << 20
MAX_MEMBER = 1 << 20  # the most read_member holds in memory


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700)
        d.chmod(0o700)
    return path


def new_set(backup_dir: Path, deployment: str) -> Path:
    """A fresh ``<backup-dir>/<deployment>/<UTC timestamp>.partial`` directory."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = private_dir(backup_dir / deployment)
    name, n = stamp, 1
    while (base / (name + PARTIAL)).exists() or (base / name).exists():  # a set, partial or complete, has it
        n += 1
        name = f"{stamp}-{n}"
    return private_dir(base / (name + PARTIAL))


def newest_complete(backup_dir: Path, deployment: str) -> Path | None:
    """The deployment's newest complete set in ``backup_dir`` (by its name, a UTC time), or None."""
    try:
        names = [p.name for p in (backup_dir / deployment).iterdir() if SET_NAME.fullmatch(p.name)]
    except OSError:
        return None
    return backup_dir / deployment / max(names) if names else None


def file_size(path: Path) -> int | None:
    """The size of a regular file (a symlink is not followed), or None."""
    try:
        st = path.lstat()
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def complete(set_dir: Path) -> Path:
    """Rename a finished ``.partial`` set to its final name."""
    final = set_dir.with_name(set_dir.name[: -len(PARTIAL)])
    set_dir.rename(final)
    return final


def write_json(path: Path, data: dict) -> None:
    """Write a JSON file, 0600, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
        tmp.rename(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class CountingReader(io.RawIOBase):
    """A file wrapper that counts the bytes read through it (``size``)."""

    def __init__(self, f):
        self.f = f
        self.size = 0

    def readable(self) -> bool:
        """Always true."""
        return True

    def readinto(self, b) -> int:
        """Read into ``b``, counting what was read."""
        data = self.f.read(len(b))
        n = len(data)
        b[:n] = data
        self.size += n
        return n


class HashingReader(CountingReader):
    """A file wrapper that sha256-hashes every byte read through it."""

    def __init__(self, f):
        super().__init__(f)
        self.digest = hashlib.sha256()

    def readinto(self, b) -> int:
        """Read into ``b``, hashing what was read."""
        n = super().readinto(b)
        self.digest.update(memoryview(b)[:n])
        return n


# No real archive or dump, over more bytes than the probe's sizes allow, is this many times smaller compressed
# (gzip cannot do better than ~1030:1 even on zeros); endless zeros through zstd are.
MAX_RATIO = 1000


class BoundedReader(CountingReader):
    """Decompressed bytes read from ``f``: raises :class:`TooBig` past ``limit`` bytes when they also came from
    more than MAX_RATIO times fewer compressed bytes (``sent()``): a legitimate stream that outgrew the probe's
    sizes is still bounded by what crosses the wire (:mod:`maasops.stream`), a decompression bomb is not."""

    def __init__(self, f: BinaryIO, limit: int | None, sent: Callable[[], int]):
        super().__init__(f)
        self.limit, self.sent = limit, sent

    def readinto(self, b) -> int:
        """Read into ``b``; TooBig past the limit."""
        n = super().readinto(b)
        if self.limit is not None and self.size > self.limit and self.size > MAX_RATIO * self.sent():
            raise TooBig(self.limit)
        return n


def listed(h: tarstream.Header, sha256: str | None = None) -> dict:
    """A member as a host manifest lists it (``sha256``: a regular file's bytes')."""
    entry = {"path": "/" + h.name, "type": kind(h), "mode": f"{h.mode:04o}", "uid": h.uid, "gid": h.gid,
             "user": h.user, "group": h.group}
    if h.kind == "file":
        entry.update(size=h.size, sha256=sha256)
    elif h.kind in ("symlink", "hardlink"):
        entry["link"] = h.link
    return entry


def kind(h: tarstream.Header) -> str:
    """A member's type as listings name it: devices and fifos are all "other"."""
    return h.kind if h.kind in ("file", "dir", "symlink", "hardlink") else "other"


def member_sha256(tar: tarstream.TarReader) -> str:
    """sha256 of the current member's bytes, read in blocks."""
    digest = hashlib.sha256()
    while chunk := tar.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def read_archive(src: BinaryIO, compress: str, limit: int | None = None) -> tuple[list[dict], str, int]:
    """Every member of a config archive read from ``src`` (path, type, size, mode, owner, sha256), in one pass.

    Returns the listing and the sha256 and size of the bytes read. The archive is read by maasops's one
    strict parser (:mod:`maasops.tarstream`: what it does not fully understand raises Malformed). Past
    ``limit`` bytes of tar stream (decompressed, trailing bytes after the archive's end included) from a
    stream that compresses like no real one (:class:`BoundedReader`) it raises TooBig.
    """
    raw = HashingReader(src)
    buffered = io.BufferedReader(raw, CHUNK)
    plain = io.BufferedReader(BoundedReader(compression.reader(buffered, compress), limit, lambda: raw.size), CHUNK)
    tar = tarstream.TarReader(plain)
    files = [listed(h, member_sha256(tar) if h.kind == "file" else None) for h in tar]
    while buffered.read(CHUNK):
        pass
    return files, raw.digest.hexdigest(), raw.size


def read_dump(src: BinaryIO, compress: str, limit: int | None = None,
              feed: Callable[[bytes], None] | None = None) -> tuple[str, str, int, int]:
    """A dump read from ``src``: its last meaningful line, sha256 and size of the bytes read, its own size.

    ``feed`` gets every decompressed chunk too (a check of what the dump holds). Past ``limit`` bytes
    of dump (decompressed) that compress like no real dump it raises TooBig.
    """
    raw = HashingReader(src)
    buffered = io.BufferedReader(raw, CHUNK)
    plain_src = BoundedReader(compression.reader(buffered, compress), limit, lambda: raw.size)
    tail = b""
    plain = 0
    while chunk := plain_src.read(CHUNK):
        plain += len(chunk)
        tail = (tail + chunk)[-4096:]
        if feed:
            feed(chunk)
    while buffered.read(CHUNK):
        pass
    return _last_meaningful(tail), raw.digest.hexdigest(), raw.size, plain


def _last_meaningful(tail: bytes) -> str:
    # pg_dump frames its closing comment with "--" lines: skip those and blanks. PostgreSQL 13.22, 14.19,
    # 15.14, 16.10, 17.6 and later end a dump with "\unrestrict KEY" (psql's guard against hostile dumps).
    lines = [ln for ln in tail.decode(errors="replace").splitlines()
             if ln.strip() not in ("", "--") and not ln.startswith("\\unrestrict ")]
    return lines[-1] if lines else ""


def last_line(src: BinaryIO) -> str:
    """The last meaningful line of a SQL dump read from ``src`` to its end (its completion line, when complete)."""
    tail = b""
    while chunk := src.read(CHUNK):
        tail = (tail + chunk)[-4096:]
    return _last_meaningful(tail)


def read_member(src: BinaryIO, member: str, compress: str) -> bytes:
    """One regular file (at most MAX_MEMBER bytes: the region's secret) of a (possibly compressed) tar archive
    read from ``src``, streamed to the archive's end, never extracted.

    An archive that holds any name twice is refused (tarstream.Malformed): GNU tar extracts the last of
    them, so no choice of one is sure to be what the host has.
    """
    found: bytes | None = None
    tar = tarstream.TarReader(compression.reader(src, compress))
    for h in tar:
        if h.name == member:
            if h.kind != "file" or h.size > MAX_MEMBER:
                raise Unsafe(f"/{member} is not a regular file of at most {MAX_MEMBER} bytes")
            found = tar.read(h.size)
    if found is None:
        raise FileNotFoundError(f"/{member} is not in the archive")
    return found


def file_sha256(path: Path) -> str:
    """sha256 of a file of a set, read in blocks (a symbolic link is not followed: :func:`open_in`)."""
    digest = hashlib.sha256()
    with open_in(path.parent, path.name) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_in(set_dir: Path, rel: str) -> BinaryIO:
    """``set_dir/rel`` open for reading, following no symbolic link: not ``set_dir`` itself, not a directory on the way,
    not the file (``O_NOFOLLOW`` at every step, each opened in the one before). Anything but a regular file (a
    link, a FIFO, a device) is refused with OSError, never opened for reading, so what is read is what is there."""
    fd = os.open(set_dir, _DIR)
    try:
        *dirs, name = rel.split("/")
        for part in dirs:
            inner = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = inner
        # O_NONBLOCK: a FIFO does not wait for a writer before it is refused; a regular file ignores it.
        ffd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OSError(exc.errno, f"{set_dir.name}/{rel}: a symbolic link (or what is not a directory) on the "
                          "way: a backup set holds regular files and directories only") from None
        raise
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(ffd).st_mode):
        os.close(ffd)
        raise OSError(errno.EINVAL, f"{set_dir.name}/{rel}: not a regular file")
    return os.fdopen(ffd, "rb")


def read_small(set_dir: Path, rel: str, limit: int) -> bytes:
    """The whole of a small file of a set (a manifest, a signature), read once (:func:`open_in`); ValueError past
    ``limit`` bytes."""
    with open_in(set_dir, rel) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{rel}: larger than {limit >> 10} KiB: not a file maasops writes")
    return data


class SetFiles(Protocol):
    """The files of one set, by their path in it (``host/file``)."""

    def size(self, rel: str) -> int | None:
        """The file's size, or None when the set has no such file."""

    def open(self, rel: str) -> AbstractContextManager[BinaryIO]:
        """A reader of the file's bytes, streamed."""

    def sha256(self, rel: str) -> str:
        """The sha256 of the file's bytes (read once)."""

    def send(self, rel: str, member: str | None = None, compress: str = "none", identity: str | None = None) -> Send:
        """A restore step's stdin: the file (or one member of it, a tar archive)."""


class LocalFiles:
    """A set in a directory on this machine."""

    def __init__(self, set_dir: Path):
        self.set_dir = set_dir

    def __str__(self) -> str:
        return str(self.set_dir)

    def size(self, rel: str) -> int | None:
        """The file's size, or None when it is missing (or not a regular file: a symbolic link is not followed)."""
        return file_size(self.set_dir / rel)

    def open(self, rel: str) -> AbstractContextManager[BinaryIO]:
        """The file, open for reading, following no symbolic link (:func:`open_in`)."""
        return open_in(self.set_dir, rel)

    def sha256(self, rel: str) -> str:
        """The file's sha256."""
        return file_sha256(self.set_dir / rel)

    def send(self, rel: str, member: str | None = None, compress: str = "none", identity: str | None = None) -> Send:
        """The file as a step's stdin, opened as :meth:`open` does when it uploads."""
        return Send(rel, member, compress, identity, files=self)
