"""Each --compress choice round-trips through the real programs the host runs and the laptop's streaming reader."""

from __future__ import annotations

import io
import os
import subprocess

import pytest

from maasops import compression
from maasops.command import Cmd, Q
from maasops.compression import AUTO, CHOICES, CODECS, codec, compressed, reader, resolve

DATA = os.urandom(100_000) + b"MAAS " * 50_000  # some bytes that compress, some that do not


def run(command: Cmd, stdin: bytes = b"") -> bytes:
    r = subprocess.run(["bash", "-o", "pipefail", "-c", str(command)], input=stdin, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "a dump.sql"
    path.write_bytes(DATA)
    return path


@pytest.mark.parametrize("name", list(CODECS))
def test_what_the_host_compresses_the_laptop_and_the_host_read_back(source, name):
    packed = run(compressed(Cmd("cat", Q(source)), name))
    assert reader(io.BytesIO(packed), name).read() == DATA
    assert run(codec(name).decompress, packed) == DATA


@pytest.mark.parametrize("name", ["gzip", "zstd"])
def test_a_compressing_codec_shrinks_and_names_its_suffix_and_tool(source, name):
    c = codec(name)
    assert len(run(compressed(Cmd("cat", Q(source)), name))) < len(DATA)
    assert c.tool == name and c.suffix == {"gzip": ".gz", "zstd": ".zst"}[name]


def test_none_sends_the_stream_as_it_is():
    command = Cmd("cat", Q("/x"))
    assert compressed(command, "none") is command
    raw = io.BytesIO(DATA)
    assert reader(raw, "none") is raw
    assert codec("none").suffix == "" and codec("none").tool is None


@pytest.mark.parametrize("name", ["gzip", "zstd"])
def test_the_reader_reads_streams_written_one_after_another(name):
    """An archive appended to in pieces (multiple gzip members, multiple zstd frames) reads as one stream."""
    packed = run(codec(name).compress, b"first ") + run(codec(name).compress, b"second")
    assert reader(io.BytesIO(packed), name).read() == b"first second"


@pytest.mark.parametrize("name", ["gzip", "zstd"])
def test_damaged_bytes_raise_one_of_the_errors_reading_may_raise(name):
    packed = bytearray(run(codec(name).compress, DATA))
    packed[len(packed) // 2] ^= 0xFF
    with pytest.raises(compression.ERRORS):
        reader(io.BytesIO(bytes(packed)), name).read()


def test_a_cut_gzip_stream_raises_one_of_the_errors_reading_may_raise():
    packed = run(codec("gzip").compress, DATA)
    with pytest.raises(compression.ERRORS):
        reader(io.BytesIO(packed[: len(packed) // 2]), "gzip").read()


@pytest.mark.parametrize("call", [lambda: codec("bzip2"), lambda: compressed(Cmd("cat"), "bzip2"),
                                  lambda: reader(io.BytesIO(b""), "bzip2")])
def test_an_unknown_codec_is_refused_naming_the_known_ones(call):
    with pytest.raises(ValueError, match=r"unknown compression 'bzip2' \(known: gzip, zstd, none\)"):
        call()


def test_auto_picks_zstd_where_the_host_has_it_else_gzip():
    assert resolve(AUTO, ("tar", "gzip", "zstd")) == "zstd"
    assert resolve(AUTO, ("tar", "gzip")) == "gzip"
    assert resolve("gzip", ("zstd",)) == "gzip" and resolve("none", ()) == "none"
    assert CHOICES == ("auto", "gzip", "zstd", "none")
