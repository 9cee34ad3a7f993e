"""The commands in runbook order, each its own module."""

from __future__ import annotations

import importlib

from maasops.namespace import RUNBOOK, ns
from maasops.program import program


def test_list_is_the_runbook(capsys):
    assert list(RUNBOOK) == ["probe", "plan", "backup", "push", "sets", "verify", "restore", "cleanup", "prune",
                             "check", "schedule", "drill"]
    program.run(["maasops", "--list"], exit=False)
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  ") and
             line.split()[0] in sorted(ns.task_names)]
    assert names == [*RUNBOOK, "lab.down", "lab.status", "lab.up"]


def test_every_command_is_its_own_module_with_its_spec_check_and_body():
    """maasops/commands/<name>.py holds the command's TaskSpec and its body ``run`` (issue 26)."""
    for name in RUNBOOK:
        module = importlib.import_module(f"maasops.commands.{name}")
        assert module.SPEC.name == name and ns[name].spec is module.SPEC, name
        assert callable(module.run), name
