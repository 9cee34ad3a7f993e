"""maasops, for ``fab`` in the checkout: the same tasks as the installed ``maasops`` command.

Run ``fab --list`` (or ``maasops --list``) for the runbook, ``fab TASK --help`` for a task's options.
"""

from maasops.namespace import ns  # noqa: F401  (Fabric loads the collection named ns)
