"""pipes.ReadAhead: every byte in order, stopped early or by its source's error."""

from __future__ import annotations

import io

import pytest

from maasops import pipes


def test_read_ahead_gives_every_byte_in_order_and_stops_when_closed_early():
    data = bytes(range(256)) * 40000  # ~10 MiB: more than it may hold ahead
    ahead = pipes.ReadAhead(io.BytesIO(data), 2)
    got = ahead.read(7) + ahead.read(3 << 20) + ahead.read()
    assert got == data and ahead.read(1) == b""
    ahead.close()
    early = pipes.ReadAhead(io.BytesIO(data), 1)
    assert early.read(10) == data[:10]
    early.close()  # its thread was blocked handing over the next block: it stops all the same


def test_read_ahead_raises_what_the_source_raised():
    class Broken(io.RawIOBase):
        def read(self, n=-1):
            raise OSError("disk gone")
    ahead = pipes.ReadAhead(Broken(), 2)
    with pytest.raises(OSError, match="disk gone"):
        ahead.read(1)
    ahead.close()
