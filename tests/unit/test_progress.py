"""Transfer progress: the runner's events, and how they are drawn (plain lines, rich bars, nothing for --json)."""

from __future__ import annotations

import io
import threading
from types import SimpleNamespace

import pytest
from rich.console import Console

from maasops import backup, backupset, output, progress, runner, stream
from maasops.command import Cmd
from maasops.plan import HostPlan, Send, Step, StepId
from maasops.progress import QUIET, Transfer, Transfers

MIB = 1 << 20


class Clock:
    """A clock the test moves by hand (no test waits for real time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_show_only_a_transfer_that_lasts_and_end_with_a_summary():
    clock, said = Clock(), []
    lines = progress.Lines(said.append, clock)
    quick = lines.started("rack1", "archive config trees", 10 * MIB, exact=True)
    clock.now += 1
    quick.advanced(10 * MIB)
    quick.ended(True)
    assert said == []  # over before SHOW_AFTER: never shown

    slow = lines.started("region1", "upload database dump", 100 * MIB, exact=True)
    clock.now += progress.SHOW_AFTER
    slow.advanced(20 * MIB)
    assert said == ["region1: upload database dump: 20.0 MiB of 100.0 MiB, 10.0 MiB/s, ETA 0:00:08"]
    clock.now += 1
    slow.advanced(30 * MIB)
    assert len(said) == 1  # the next line waits LINE_EVERY
    clock.now += progress.LINE_EVERY
    slow.advanced(100 * MIB)
    slow.ended(True)
    assert said[1].startswith("region1: upload database dump: 100.0 MiB of 100.0 MiB, ")
    assert "ETA" not in said[1]
    assert said[2] == "region1: upload database dump: 100.0 MiB in 13.0s (7.7 MiB/s)"


def test_plain_lines_say_an_estimate_is_one_and_an_unknown_size_has_no_eta():
    clock, said = Clock(), []
    lines = progress.Lines(said.append, clock)
    guessed = lines.started("region1", "dump database (pg_dump)", 40 * MIB, exact=False)
    unknown = lines.started("rack1", "archive config trees")
    clock.now += 4
    guessed.advanced(8 * MIB)
    unknown.advanced(8 * MIB)
    guessed.ended(False)
    assert said == ["region1: dump database (pg_dump): 8.0 MiB of ~40.0 MiB, 2.0 MiB/s, ETA about 0:00:16",
                    "rack1: archive config trees: 8.0 MiB, 2.0 MiB/s",
                    "region1: dump database (pg_dump): 8.0 MiB in 4.0s (2.0 MiB/s), stopped"]


def test_bars_on_a_terminal_leave_only_the_summary_of_what_was_shown():
    clock, buf = Clock(), io.StringIO()
    console = Console(file=buf, width=100, force_terminal=True, color_system=None)
    with progress.Bars(console, clock) as bars:
        quick = bars.started("rack1", "archive config trees", MIB, exact=True)
        quick.advanced(MIB)
        quick.ended(True)
        slow = bars.started("region1", "dump database (pg_dump)", 50 * MIB, exact=False)
        for i in range(1, 31):
            clock.now += 0.25
            slow.advanced(i * MIB)
        assert bars.visible == 1 and bars.progress.live.is_started
        slow.ended(True)
        assert bars.visible == 0 and not bars.progress.live.is_started  # the display is up only while needed
    out = buf.getvalue()
    assert "region1: dump database (pg_dump): 30.0 MiB in 7.5s (4.0 MiB/s)" in out
    assert "rack1" not in out


def test_a_renderer_is_chosen_by_the_output():
    assert progress.for_output(output.Output(json_mode=True)) is QUIET  # --json: never any progress
    assert isinstance(progress.for_output(output.Output()), progress.Lines)  # pytest's stdout is no terminal


def test_a_size_is_exact_for_a_whole_plain_upload_and_an_estimate_otherwise(tmp_path):
    f = tmp_path / "maasdb.sql.gz"
    f.write_bytes(b"x" * 1234)
    up = Step(StepId.UPLOAD_DUMP, "upload", Cmd("cat"), send=Send(str(f)))
    assert runner.expected_size(up) == (1234, True)
    encrypted = Step(StepId.UPLOAD_DUMP, "upload", Cmd("cat"), send=Send(str(f), identity="key.txt"))
    assert runner.expected_size(encrypted) == (1234, False)  # it goes up decrypted, a little smaller
    member = Step(StepId.WRITE_SECRET, "secret", Cmd("cat"), send=Send(str(f), member="var/lib/maas/secret"))
    assert runner.expected_size(member) == (None, False)
    fetch = Step(StepId.DUMP, "dump", Cmd("pg_dump"), fetch="maasdb.sql.gz", limit=10 * MIB, estimate=5 * MIB)
    assert runner.expected_size(fetch) == (5 * MIB, False)  # the estimate, never the limit


class Recorder(Transfers):
    """Every event, in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def started(self, host: str, label: str, size: int | None = None, exact: bool = False) -> Transfer:
        self.events.append(("started", host, label, size, exact))
        events = self.events

        class T(Transfer):
            def advanced(self, done: int) -> None:
                events.append(("advanced", done))

            def ended(self, ok: bool) -> None:
                events.append(("ended", ok))
        return T()


@pytest.mark.parametrize("fails", [False, True])
def test_the_runner_reports_a_fetch_as_events_and_always_ends_it(monkeypatch, tmp_path, fails):
    def download(c, command, dest, step, *, sudo_user=None, progress=None, **extra):
        progress(100)
        progress(250)
        if fails:
            raise OSError("the laptop's disk is full")
        return stream.Streamed(dest, 250, "sha")
    monkeypatch.setattr(stream, "download", download)
    rec = Recorder()
    step = Step(StepId.DUMP, "dump database (pg_dump)", Cmd("pg_dump"), fetch="maasdb.sql.gz", estimate=300)
    conn = SimpleNamespace(original_host="region1", host="10.0.0.1")
    if fails:
        with pytest.raises(OSError):
            runner.run_step(conn, step, tmp_path, threading.Event(), rec)
    else:
        runner.run_step(conn, step, tmp_path, threading.Event(), rec)
    assert rec.events == [("started", "region1", "dump database (pg_dump)", 300, False), ("advanced", 100),
                          ("advanced", 250), ("ended", not fails)]


def test_a_cancel_is_heard_between_blocks_and_the_transfer_ends_not_ok(monkeypatch, tmp_path):
    cancel = threading.Event()

    def download(c, command, dest, step, *, sudo_user=None, progress=None, **extra):
        progress(100)
        cancel.set()
        progress(200)
        raise AssertionError("not reached")
    monkeypatch.setattr(stream, "download", download)
    rec = Recorder()
    step = Step(StepId.ARCHIVE, "archive config trees", Cmd("tar"), fetch="config.tar.gz")
    with pytest.raises(runner.Cancelled):
        runner.run_step(SimpleNamespace(original_host="rack1"), step, tmp_path, cancel, rec)
    assert rec.events[-2:] == [("advanced", 100), ("ended", False)]


def test_a_backup_expects_each_file_to_be_as_big_as_in_the_newest_complete_set(tmp_path):
    base = tmp_path / "lab"
    for name, size in (("20260101T000000Z", 10), ("20260102T000000Z", 20), ("20260103T000000Z.partial", 99)):
        (base / name / "region1").mkdir(parents=True)
        (base / name / "region1" / "maasdb.sql.gz").write_bytes(b"x" * size)
    previous = backupset.newest_complete(tmp_path, "lab")
    assert previous == base / "20260102T000000Z"  # a .partial set is no measure
    (previous / "region1" / "config.tar.gz").symlink_to("/etc/passwd")  # a link is not followed
    hp = HostPlan("region1", None, (Step(StepId.DUMP, "dump", Cmd("pg_dump"), fetch="maasdb.sql.gz"),
                                    Step(StepId.ARCHIVE, "archive", Cmd("tar"), fetch="config.tar.gz", estimate=7),
                                    Step(StepId.STOP_UNITS, "stop", Cmd("systemctl stop maas"))))
    got = backup.estimated({"region1": hp}, previous)["region1"]
    assert [s.estimate for s in got.steps] == [20, 7, None]
    assert backup.estimated({"region1": hp}, None)["region1"] is hp
    assert backupset.newest_complete(tmp_path, "elsewhere") is None
