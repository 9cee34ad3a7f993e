"""Files that hold a secret (a password, a private key): readable by their owner only, or refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotPrivate(ValueError):
    """A secret's file that others can read (or that is no file): the message names it, its mode and the fix."""


def private_file(path: Path, what: str) -> Path:
    """``path`` when it is a regular file that only its owner may read or write; NotPrivate naming ``what``, the
    file and its mode otherwise (a group- or world-readable secret is refused, never used)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise NotPrivate(f"{what} {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotPrivate(f"{what} {path} is not a regular file")
    if st.st_mode & 0o077:
        raise NotPrivate(f"{what} {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}): chmod 600 it")
    return path
