"""The commands a user runs, in runbook order: what ``maasops --list`` (and ``fab --list`` in the checkout) shows.

Each command is a module of :mod:`maasops.commands` (its :class:`~maasops.options.TaskSpec`, its check, its body
``run``); this module only orders them and builds the collection, the lab's own tasks under ``lab.``.
"""

from __future__ import annotations

from invoke import Collection

from maasops.commands import (
    backup,
    check,
    cleanup,
    drill,
    plan,
    probe,
    prune,
    push,
    restore,
    schedule,
    sets,
    verify,
)
from maasops.commands.fleet_request import fleet_command, local_command
from maasops.lab import tasks as lab_tasks

FLEET_COMMANDS = (probe, plan, backup, push, sets, verify, restore, cleanup, prune, check, schedule)
SPECS = tuple(m.SPEC for m in FLEET_COMMANDS)  # the man page's tasks
RUNBOOK = tuple(s.name for s in SPECS) + (drill.SPEC.name,)


def build() -> Collection:
    """The collection of every user command, the lab's own tasks under ``lab.``."""
    ns = Collection(*(fleet_command(m.SPEC, m.run) for m in FLEET_COMMANDS), local_command(drill.SPEC, drill.run))
    ns.add_collection(lab_tasks.ns, name="lab")
    return ns


ns = build()
