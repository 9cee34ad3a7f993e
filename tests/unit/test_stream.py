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


# --- the laptop's floor and ceiling (issue 24): the host's own sizes never decide alone ------------------------


def _plan_limits(sizes: dict, db_size: int | None, **options) -> dict:
    from dataclasses import replace

    from maasops import backup_plan as bp
    from maasops.plan import StepId
    from tests.builders import DB_LOCAL, facts
    p = bp.backup_plan(facts(sizes=sizes, db=replace(DB_LOCAL, size=db_size)), "local", bp.BackupOptions(**options))
    return {StepId.ARCHIVE: p.step(StepId.ARCHIVE).limit, StepId.DUMP: p.step(StepId.DUMP).limit, "notes": p.notes}


def test_a_host_that_reports_no_sizes_still_gets_the_laptops_ceiling():
    from maasops import stream
    from maasops.plan import StepId
    got = _plan_limits({}, None)
    assert got[StepId.ARCHIVE] == got[StepId.DUMP] == stream.CEILING_GIB << 30
    assert any("bounded by the laptop's ceiling only" in n for n in got["notes"])


def test_a_host_that_reports_huge_sizes_gets_the_ceiling_and_tiny_ones_the_floor():
    from maasops import stream
    from maasops.plan import StepId
    huge = _plan_limits({"/etc/maas": 1 << 62, "/var/lib/maas": 1 << 62}, 1 << 62)
    assert huge[StepId.ARCHIVE] == huge[StepId.DUMP] == stream.CEILING_GIB << 30
    tiny = _plan_limits({"/etc/maas": 1, "/var/lib/maas": 1}, 1)
    assert tiny[StepId.ARCHIVE] == tiny[StepId.DUMP] == stream.FLOOR
    raised = _plan_limits({}, None, max_stream_gib=4096)
    assert raised[StepId.ARCHIVE] == 4096 << 30


def test_bound_holds_what_the_host_allows_between_floor_and_ceiling():
    from maasops import stream
    assert stream.bound(None) == stream.CEILING_GIB << 30
    assert stream.bound(200 << 20) == 200 << 20
    assert stream.bound(0) == stream.FLOOR and stream.bound(1 << 62, 2) == 2 << 30
