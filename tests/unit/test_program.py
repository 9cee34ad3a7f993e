"""The command line as designed once: flags, help anywhere (``maasops`` and ``fab``), --list, --json, exit codes."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import invoke
import pytest

from maasops import options, output, results
from maasops.namespace import ns
from maasops.program import program
from tests.labtools import ROOT

TASKS = sorted(ns.task_names)
POSITIONAL = {"plan": "backup", "push": "backups/x/1", "verify": "backups/x/1", "restore": "backups/x/1",
              "schedule": "status"}


@pytest.fixture
def nothing_runs(monkeypatch, tmp_path):
    """Any task that would run fails the test (and the working directory holds no lab)."""
    def ran(self, *tasks):
        raise AssertionError(f"a task ran: {tasks}")
    monkeypatch.setattr(invoke.Executor, "execute", ran)
    monkeypatch.chdir(tmp_path)


def help_lines(task: str) -> list[str]:
    return [f"Usage: maasops [core options] {task} ", "Options:"]


@pytest.mark.parametrize("task", TASKS)
def test_maasops_prints_help_wherever_h_stands_and_runs_nothing(nothing_runs, capsys, task):
    spec = ns[task].spec
    lines = [[task, "-h"], [task, "--help"], ["-h", task], ["--help", task], ["--help=" + task], ["-H", "-h", task],
             [task, "--json", "-h"]]
    if spec.positional:
        lines += [[task, "-h", POSITIONAL[task]], [task, POSITIONAL[task], "--help"]]
    for argv in lines:
        program.run(["maasops", *argv], exit=False)
        out = capsys.readouterr().out
        assert out.startswith(f"Usage: maasops [core options] {task} "), argv
        assert spec.doc.strip() in out and "Exit codes: 0 ok, 1 some hosts failed" in out, argv
        for name in spec.positional + spec.options:
            assert options.OPTIONS[name].shown() in out, (argv, name)


FAB_WRAPPER = ("import sys, invoke, fabric\n"
               "def ran(self, *tasks): sys.exit('a task ran')\n"
               "invoke.Executor.execute = fabric.Executor.execute = ran\n"
               "from fabric.main import program\n"
               "program.run()\n")


def fab(*argv: str) -> subprocess.CompletedProcess:
    """``fab ARGV`` in the checkout, with every task's execution made to fail."""
    return subprocess.run([sys.executable, "-c", FAB_WRAPPER, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("argv", [[t, "-h"] for t in TASKS] + [
    ["restore", "--help"], ["verify", "--help"], ["plan", "--help"], ["plan", "backup", "-h"],
    ["plan", "-h", "backup"], ["verify", "-h", "backups/x/1"], ["-h", "restore"], ["restore", "-s", "x", "-h"]],
    ids=" ".join)
def test_fab_in_the_checkout_prints_help_and_runs_nothing(argv):
    task = next(a for a in argv if a in TASKS)
    r = fab(*argv)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"Usage: fab [core options] {task} "), r.stdout
    assert ns[task].spec.doc.strip() in r.stdout


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        program.run(["maasops", *argv])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_a_refusal_is_exit_2_with_one_json_document_and_metrics(nothing_runs_but_fleet, capsys, tmp_path):
    prom = tmp_path / "maasops.prom"
    code, out, err = run(capsys, "backup", "--json", "--lab-dir", str(tmp_path / "none"), "--metrics-file", str(prom))
    doc = json.loads(out)
    assert code == results.REFUSED == doc["exit_code"]
    assert doc["operation"] == "backup" and doc["status"] == "refused" and "No hosts" in doc["error"]
    assert "No hosts" in err
    assert 'maasops_last_run_exit_code{operation="backup",deployment=""} 2' in prom.read_text()


def test_hosts_from_h_and_an_inventory_together_are_refused(nothing_runs_but_fleet, capsys, tmp_path):
    code, out, err = run(capsys, "-H", "region1", "probe", "-I", str(tmp_path / "inventory.yaml"), "--json")
    assert code == results.REFUSED
    assert json.loads(out)["error"] == "give hosts with -H or with --inventory, not both"


@pytest.mark.parametrize("argv", [["nope"], ["backup", "--nope"], ["probe", "-P", "many"], ["verify"]])
def test_a_command_line_that_does_not_parse_is_refused(nothing_runs, capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == results.REFUSED and out == "" and err.startswith(("maasops: ", f"maasops {argv[0]}: "))


@pytest.fixture
def nothing_runs_but_fleet(monkeypatch, tmp_path):
    """The fleet runs (its hosts are looked for), but no host is ever reached."""
    from maasops import fleet

    def reach(*args, **kwargs):
        raise AssertionError("a host was reached")
    monkeypatch.setattr(fleet, "probe_all", reach)
    monkeypatch.setattr(fleet, "from_connections", reach)
    monkeypatch.chdir(tmp_path)


def test_an_error_maasops_did_not_foresee_is_one_line_and_a_document(nothing_runs_but_fleet, capsys):
    code, out, err = run(capsys, "-H", "region1", "probe", "--json")  # the fixture makes reaching a host raise
    doc = json.loads(out)
    assert code == results.FAILED == doc["exit_code"] and doc["status"] == "failed"
    assert err.strip().splitlines()[-1] == "maasops: error: AssertionError: a host was reached"
    assert "Traceback" not in err
    code, out, err = run(capsys, "-v", "-H", "region1", "probe")
    assert code == results.FAILED and "Traceback" in err  # -v shows it


def test_each_run_prints_one_json_document_whoever_prints_it(nothing_runs_but_fleet, capsys, tmp_path):
    """The document count is the run's (output.Documents), not the process's: a run whose task printed its document
    gets no second one, and the next run, whose task printed none, gets the program's."""
    code, out, _ = run(capsys, "backup", "--json", "--lab-dir", str(tmp_path / "none"))
    assert code == results.REFUSED and json.loads(out)["operation"] == "backup"
    code, out, _ = run(capsys, "probe", "--json", "-P", "many")
    assert code == results.REFUSED and json.loads(out)["operation"] == "probe"
    documents = output.Documents()
    assert copy.copy(documents) is documents  # Invoke copies the config's values: every task counts in the run's
    output.Output(True, documents=documents).emit({"operation": "x"})
    output.Output(True).emit({"operation": "y"})
    assert documents.printed == 1
    capsys.readouterr()
