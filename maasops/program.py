"""The ``maasops`` command: a Fabric program with maasops's own tasks, run from any directory.

Invoke documents this for distinct binaries: a ``Program`` with a fixed namespace
instead of a tasks file found by walking up from the current directory. On top of
Fabric's ``fab``: ``-h``/``--help`` print a task's help wherever they stand (before
or after the task name, even where Invoke would take them for a value) and never
run anything, ``--list`` keeps the runbook's order, and a command line that does not
parse is refused with exit code 2, like every other refusal.
"""

from __future__ import annotations

import sys

from fabric import Config, Executor
from fabric.main import Fab
from invoke import Exit, ParseError

from maasops import __version__
from maasops.namespace import RUNBOOK, ns
from maasops.options import HELP_WORDS, help_asked, task_help
from maasops.repo import describe_installed
from maasops.results import REFUSED


class Maasops(Fab):
    """``fab`` with maasops's namespace, help anywhere, and the runbook's order in ``--list``."""

    def run(self, argv: list[str] | str | None = None, exit: bool = True) -> None:
        """Run the command line; one asking for help prints it and runs nothing."""
        args = list(sys.argv if argv is None else argv.split() if isinstance(argv, str) else argv)
        name = help_asked(args[1:], self.namespace)
        if name:
            print(task_help(self.namespace, name, self.binary))
            return
        if "--complete" not in args and any(a in HELP_WORDS for a in args[1:]):
            args = [args[0], "--help"]
        super().run(args, exit)

    def parse_core(self, argv: list[str] | None) -> None:
        """Fabric's parsing of core flags; a command line it cannot parse is refused with exit code 2."""
        try:
            super().parse_core(argv)
        except (ParseError, ValueError) as exc:  # Invoke casts an int flag's value unguarded
            raise Exit(f"{self.binary}: {exc}", code=REFUSED) from None

    def parse_tasks(self) -> None:
        """Invoke's parsing of the tasks and their flags; a command line it cannot parse is refused (exit 2)."""
        try:
            super().parse_tasks()
        except (ParseError, ValueError) as exc:  # Invoke casts an int flag's value unguarded
            raise Exit(f"{self.binary}: {exc}", code=REFUSED) from None

    def print_version(self) -> None:
        """maasops's version and Fabric's, then the restic a ``--repo`` uses and the paths it gets."""
        super().print_version()
        print(describe_installed())

    def print_task_help(self, name: str) -> None:
        """A task's help (``maasops --help=TASK``), the same text as ``maasops TASK --help``."""
        print(task_help(self.collection, name, self.binary))

    def _make_pairs(self, coll, ancestors=None):
        pairs = super()._make_pairs(coll, ancestors)
        order = {name: i for i, name in enumerate(RUNBOOK)}
        return sorted(pairs, key=lambda p: (order.get(p[0].split(",")[0].strip(), len(order)), p[0]))


program = Maasops(name="maasops", binary="maasops", version=__version__, namespace=ns, executor_class=Executor,
                  config_class=Config)


def main() -> None:
    """The console script's entry point."""
    program.run()
