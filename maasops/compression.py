"""How archives and dumps are compressed: on the host as they are written, on the laptop or host when read.

One codec per ``--compress`` choice: the host command that compresses a stream,
the one that decompresses it, the file suffix, the tool the host needs, and how
the laptop reads it back (streaming, never a whole file in memory).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from maasops.command import Cmd


@dataclass(frozen=True)
class Codec:
    """One way of compressing a stream."""

    name: str
    compress: Cmd | None  # None: the stream goes as it is
    decompress: Cmd
    suffix: str
    tool: str | None  # what the host must have


CODECS = {
    "gzip": Codec("gzip", Cmd("gzip -1"), Cmd("gzip -dc"), ".gz", "gzip"),
    # Level 3 (zstd's own default): benchmarks/compression.py measures levels 1 to 9 on both kinds of MAAS
    # database (benchmarks/RESULTS.md, 5); at the sizes tried so far 1 and 3 were within noise of each other.
    "zstd": Codec("zstd", Cmd("zstd -q -T0"), Cmd("zstd -dc"), ".zst", "zstd"),
    "none": Codec("none", None, Cmd("cat"), "", None),
}


ERRORS = (OSError, EOFError, zlib.error, zstandard.ZstdError)  # what reading damaged compressed bytes raises
AUTO = "auto"  # --compress auto: zstd where the host has it, else gzip (every host has gzip)
CHOICES = (AUTO, *CODECS)


def resolve(name: str, tools: Iterable[str]) -> str:
    """The codec a host's files get for ``--compress name`` (``auto``: zstd if ``tools`` has it, else gzip)."""
    if name != AUTO:
        return name
    return "zstd" if "zstd" in tools else "gzip"


def codec(name: str) -> Codec:
    """The codec called ``name`` (ValueError naming the known ones otherwise)."""
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"unknown compression {name!r} (known: {', '.join(CODECS)})") from None


def compressed(command: Cmd, name: str) -> Cmd:
    """``command`` with its output compressed as ``name`` says."""
    c = codec(name).compress
    return Cmd(command, "|", c) if c else command


def reader(raw: BinaryIO, name: str) -> BinaryIO:
    """A reader of the decompressed bytes of ``raw`` (streaming)."""
    if name == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if name == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    codec(name)
    return raw
