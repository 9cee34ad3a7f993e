"""The ``maasops`` command: a Fabric program with maasops's own tasks, run from any directory.

Invoke documents this for distinct binaries: a ``Program`` with a fixed namespace
instead of a tasks file found by walking up from the current directory. On top of
Fabric's ``fab``: ``-h``/``--help`` print help wherever they stand and never run
anything, and ``--list`` keeps the runbook's order.
"""

from __future__ import annotations

import sys

from fabric import Config, Executor
from fabric.main import Fab

from maasops import __version__
from maasops.namespace import RUNBOOK, ns
from maasops.options import HELP_WORDS


class Maasops(Fab):
    """``fab`` with maasops's namespace, help anywhere, and the runbook's order in ``--list``."""

    def run(self, argv: list[str] | str | None = None, exit: bool = True) -> None:
        """Run the command line (``-h``/``--help`` after a task name shows that task's help)."""
        args = list(sys.argv if argv is None else argv.split() if isinstance(argv, str) else argv)
        if any(a in HELP_WORDS for a in args[1:]):
            names = set(self.namespace.task_names) if self.namespace else set()
            task = next((a for a in args[1:] if a in names), None)
            args = [args[0], "--help"] + ([task] if task else [])
        super().run(args, exit)

    def _make_pairs(self, coll, ancestors=None):
        pairs = super()._make_pairs(coll, ancestors)
        order = {name: i for i, name in enumerate(RUNBOOK)}
        return sorted(pairs, key=lambda p: (order.get(p[0].split(",")[0].strip(), len(order)), p[0]))


program = Maasops(name="maasops", binary="maasops", version=__version__, namespace=ns, executor_class=Executor,
                  config_class=Config)


def main() -> None:
    """The console script's entry point."""
    program.run()
