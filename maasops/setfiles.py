"""Where a set's big files are read from: a directory on this machine, or a restic repository.

A set's manifests are always files on this machine (a repository's are first
written into a private directory, :mod:`maasops.reposet`); its archives and
dumps are read through a :class:`SetFiles`, by their path in the set
(``<host>/<file>``), so verify and restore read a local set and a repository's
set by the same code, streaming, never unpacking a copy first. A local set's
files are opened following no symbolic link, its directories included.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, Protocol

from maasops import backupset
from maasops.plan import Send


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
        return backupset.file_size(self.set_dir / rel)

    def open(self, rel: str) -> AbstractContextManager[BinaryIO]:
        """The file, open for reading, following no symbolic link (:func:`maasops.backupset.open_in`)."""
        return backupset.open_in(self.set_dir, rel)

    def sha256(self, rel: str) -> str:
        """The file's sha256."""
        return backupset.file_sha256(self.set_dir / rel)

    def send(self, rel: str, member: str | None = None, compress: str = "none", identity: str | None = None) -> Send:
        """The file as a step's stdin, opened as :meth:`open` does when it uploads."""
        return Send(rel, member, compress, identity, files=self)
