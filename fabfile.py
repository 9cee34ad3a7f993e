"""maasops, for ``fab`` in the checkout: the same tasks as the installed ``maasops`` command.

Run ``fab --list`` (or ``maasops --list``) for the runbook, ``fab TASK --help`` for a task's options.
"""

import sys

from maasops.namespace import ns
from maasops.options import help_asked, task_help

# fab loads this file after parsing its own flags and before any task's. Its parser can take a
# -h/--help for a task's value (`fab plan -h backup` would run backup, `fab verify -h SET` fails
# to parse): a command line with -h/--help anywhere and a task named prints that task's help here,
# and nothing runs.
_asked = help_asked(sys.argv[1:], ns)
if _asked:
    print(task_help(ns, _asked, "fab"))
    sys.exit(0)
