"""Byte sinks for streaming: a hashing file writer, and a pipe that feeds a reader running in a thread.

A download writes each block it receives to every sink; a ``PipeConsumer``
lets pull-style code (tarfile, pyrage) read those same blocks in step, so one
pass over the network gives the stored file and whatever is computed from it.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from typing import BinaryIO

BLOCK = 1 << 20


class FileSink:
    """Writes to an open file descriptor, hashing as it goes; ``close()`` returns (sha256, size)."""

    def __init__(self, fd: int):
        self._f = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes) -> int:
        """Append bytes to the file."""
        self._f.write(data)
        self._digest.update(data)
        self._size += len(data)
        return len(data)

    def flush(self) -> None:
        """Flush to the OS."""
        self._f.flush()

    def close(self) -> tuple[str, int]:
        """Flush and close; the sha256 and size of what was written."""
        self._f.close()
        return self._digest.hexdigest(), self._size


class PipeConsumer:
    """Runs ``fn(reader)`` in a thread over every byte written to it; ``close()`` returns its result."""

    def __init__(self, fn: Callable[[BinaryIO], object]):
        r, w = os.pipe()
        self._writer = os.fdopen(w, "wb")
        self._result: list = []
        self._failure: list[BaseException] = []

        def work() -> None:
            with os.fdopen(r, "rb") as reader:
                try:
                    self._result.append(fn(reader))
                    while reader.read(BLOCK):  # let the writer finish even if fn stopped early
                        pass
                except BaseException as exc:  # re-raised by write() or close()
                    self._failure.append(exc)
        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        """Hand bytes to the consumer; raises its failure if it has died."""
        try:
            self._writer.write(data)
        except BrokenPipeError:
            self._thread.join()
            raise self._failure[0] if self._failure else OSError("consumer ended early") from None

    def close(self) -> object:
        """End of input: wait for the consumer and return its result (or raise its failure)."""
        try:
            self._writer.close()
        except BrokenPipeError:
            pass
        self._thread.join()
        if self._failure:
            raise self._failure[0]
        return self._result[0]


class ReadAhead:
    """Reads ``src`` in a thread, up to ``blocks`` blocks ahead of its own reader.

    A producer that stalls between bursts (``restic dump`` loads one blob after another)
    then works while the reader is busy sending what it already has; memory stays
    bounded by ``blocks`` x BLOCK. ``close()`` stops the thread (never ``src``).
    """

    def __init__(self, src: BinaryIO, blocks: int):
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=blocks)
        self._stop = threading.Event()
        self._block, self._at = b"", 0  # the block being read, and how far
        self._done = False

        def work() -> None:
            try:
                while not self._stop.is_set():
                    block = src.read(BLOCK)
                    self._put(block)
                    if not block:
                        return
            except BaseException as exc:  # re-raised by read()
                self._put(exc)
        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (b'' at the end); ``n`` < 0: everything left."""
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(BLOCK), b""))
        while self._at >= len(self._block) and not self._done:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            self._block, self._at, self._done = item, 0, not item
        data = self._block[self._at:self._at + n]  # only the bytes asked for are copied (the whole block: none)
        self._at += len(data)
        return data

    def close(self) -> None:
        """Stop reading ahead (``src`` stays open: its owner ends it, which ends the thread)."""
        self._stop.set()
        self._thread.join()
