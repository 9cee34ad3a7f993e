"""The runner's order of events, with steps that only pretend (no host): background steps, failures, undo."""

from __future__ import annotations

import threading
import time

import pytest

from maasops import runner
from maasops.command import Cmd
from maasops.errors import RemoteError
from maasops.plan import Step, StepId

STEPS = (Step(StepId.DUMP, "dump", Cmd("pg_dumpall"), fetch="maasdb.sql.gz", background=True),
         Step(StepId.STOP_UNITS, "stop", Cmd("systemctl stop maas"), undo=Cmd("systemctl start maas")),
         Step(StepId.ARCHIVE, "archive", Cmd("tar"), fetch="config.tar.gz"),
         Step(StepId.START_UNITS, "start", Cmd("systemctl start maas"), resolves=(StepId.STOP_UNITS,)))


@pytest.fixture
def pretend(monkeypatch):
    """Steps take ``took[name]`` seconds in blocks that honour cancellation, or fail when named in ``fails``."""
    took: dict[str, float] = {}
    fails: set[str] = set()
    events: list[str] = []

    def run_step(c, step, dest_dir, cancel, transfers=None, stream_options=None):
        events.append(f"begin {step.label}")
        started = time.time()
        end = time.monotonic() + took.get(step.label, 0)
        while time.monotonic() < end:
            if cancel.is_set():
                events.append(f"cancelled {step.label}")
                raise runner.Cancelled(step.label)
            time.sleep(0.01)
        if step.label in fails:
            raise RemoteError("region1", step.label, "it broke")
        events.append(f"end {step.label}")
        return runner.StepRecord(step.id, step.label, started, time.time())
    monkeypatch.setattr(runner, "run_step", run_step)
    return took, fails, events


def run(steps=STEPS):
    outcome = runner.HostOutcome("region1")
    ok = runner.run_steps(None, steps, outcome, None, threading.Event())
    return ok, outcome


def test_a_background_step_runs_alongside_and_the_host_waits_for_it(pretend):
    took, _, events = pretend
    took["dump"] = 0.3
    ok, outcome = run()
    assert ok and not outcome.pending
    assert events.index("end start") < events.index("end dump")  # the units were back before the dump ended
    assert {r.label for r in outcome.records} == {"dump", "stop", "archive", "start"}


def test_a_background_failure_stops_the_others_and_leaves_the_undo_to_run(pretend):
    took, fails, events = pretend
    took.update(dump=0.1, archive=5)
    fails.add("dump")
    ok, outcome = run()
    assert not ok and outcome.error.step == "dump"
    assert "cancelled archive" in events and "begin start" not in events
    assert [p.label for p in outcome.pending] == ["stop"]  # run_plan's unwind starts the units


def test_a_failure_of_the_host_stops_its_background_step(pretend):
    took, fails, events = pretend
    took.update(dump=5, archive=0.1)
    fails.add("archive")
    ok, outcome = run()
    assert not ok and outcome.error.step == "archive"  # the first reason is the one reported
    assert "cancelled dump" in events


def test_a_background_step_may_not_have_an_undo(pretend):
    ok, outcome = run((Step(StepId.DUMP, "x", Cmd("true"), undo=Cmd("false"), background=True),))
    assert not ok and "background step 'x' has an undo" in str(outcome.error)
