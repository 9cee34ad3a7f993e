"""Encryption at rest with age (pyrage): archives and dumps are encrypted as they stream in.

Recipients are age public keys (``age1...``) or SSH public keys (``ssh-ed25519 ...``,
``ssh-rsa ...``); identities are read from an age identity file (``AGE-SECRET-KEY-1...``
lines, as ``age-keygen`` writes) or an unencrypted SSH private key. Nothing here ever
holds a whole file: bytes move through OS pipes between the caller and pyrage.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyrage

from maasops.pipes import FileSink
from maasops.secretfile import NotPrivate, private_file

AGE_MAGIC = b"age-encryption.org/v1"


class CryptoError(ValueError):
    """A recipient or identity that cannot be used, or data that does not decrypt."""


def recipients(text: str) -> list:
    """Parse comma-separated age or SSH public keys."""
    out = []
    for key in filter(None, (k.strip() for k in text.split(","))):
        try:
            out.append(pyrage.ssh.Recipient.from_str(key) if key.startswith("ssh-")
                       else pyrage.x25519.Recipient.from_str(key))
        except Exception as exc:  # pyrage raises its own RecipientError and ValueError
            raise CryptoError(f"not an age or SSH public key: {key[:20]}... ({exc})") from None
    if not out:
        raise CryptoError("--encrypt-to needs at least one age (age1...) or SSH public key")
    return out


def identities(path: Path) -> list:
    """The identities in an age identity file or an unencrypted SSH private key file (readable by its owner only:
    CryptoError naming the file and its mode otherwise; CryptoError naming the file when it holds none)."""
    try:
        text = private_file(path, "identity file").read_text()
    except NotPrivate as exc:
        raise CryptoError(str(exc)) from None
    try:
        if "PRIVATE KEY" in text:
            return [pyrage.ssh.Identity.from_buffer(text.encode())]
        keys = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("AGE-SECRET-KEY-")]
        found = [pyrage.x25519.Identity.from_str(k) for k in keys]
    except Exception as exc:  # pyrage's IdentityError and friends
        raise CryptoError(f"{path}: not a usable age or SSH identity ({exc})") from None
    if not found:
        raise CryptoError(f"{path}: holds no age identity (AGE-SECRET-KEY-...) or SSH private key")
    return found


def encrypt_into(fd: int, to: list) -> Callable[[BinaryIO], tuple[str, int]]:
    """A pipe consumer that encrypts what it reads into the open file ``fd``; returns (sha256, size) stored."""
    def run(reader: BinaryIO) -> tuple[str, int]:
        out = FileSink(fd)
        try:
            pyrage.encrypt_io(reader, out, to)
        except pyrage.EncryptError as exc:  # pyrage reports the file's OSError (a full disk) this way
            out.close()
            raise OSError(errno.EIO, str(exc)) from None
        return out.close()
    return run


@contextmanager
def decrypted(src: BinaryIO, ids: list, name: str) -> Iterator[BinaryIO]:
    """A reader of the plaintext of the age file ``src`` reads (``name`` in errors), decrypted in a thread."""
    r, w = os.pipe()
    failure: list[BaseException] = []

    def pump() -> None:
        try:
            with os.fdopen(w, "wb") as dst:
                pyrage.decrypt_io(src, dst, ids)
        except BaseException as exc:  # handed to the reader below
            failure.append(exc)
    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    reader = os.fdopen(r, "rb")
    finished = False
    try:
        yield reader
        finished = True
    finally:
        # A caller that stopped early (one archive member) does not care how the rest would have gone;
        # one that read to the end, or failed reading, must hear that decryption failed.
        judged = not finished or reader.read(1) == b""
        reader.close()  # a writer still running sees a broken pipe and ends
        thread.join()
        if judged and failure:
            raise CryptoError(f"{name} does not decrypt with the given identity: {failure[0]}") from None
