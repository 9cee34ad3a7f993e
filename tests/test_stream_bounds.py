"""The bound on decompressed bytes: a decompression bomb stops, real data that outgrew the probe does not."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
import zstandard

from maasops import backupset
from maasops.errors import TooBig


def _tar(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _zstd(data: bytes) -> io.BytesIO:
    return io.BytesIO(zstandard.ZstdCompressor().compress(data))


def test_a_tar_followed_by_endless_zeros_is_stopped_past_the_bound():
    bomb = _tar({"etc/maas/regiond.conf": b"maas_url: x\n"}) + bytes(64 << 20)
    with pytest.raises(TooBig) as got:
        backupset.read_archive(_zstd(bomb), "zstd", 1 << 20)
    assert got.value.limit == 1 << 20


def test_real_data_past_the_bound_is_read_and_listed_the_wire_bounds_it():
    data = os.urandom(1 << 20) + b"maas " * (1 << 20)  # 6 MiB that compress about 5:1, over a 1 MiB bound
    files, _, size = backupset.read_archive(_zstd(_tar({"var/lib/maas/x": data})), "zstd", 1 << 20)
    assert [f["size"] for f in files] == [len(data)] and size < 2 << 20
    assert backupset.read_dump(_zstd(data + b"\n-- done\n"), "zstd", 1 << 20)[0] == "-- done"
