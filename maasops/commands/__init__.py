"""One module per user command, as ``maasops --list`` shows them: each holds the command's
:class:`~maasops.options.TaskSpec` (its options, from the one table in :mod:`maasops.options`), its
parse-time check where it has one, and its body ``run(c, req)``. What they share (the request, its
targets, how an outcome is reported) is :mod:`maasops.commands.fleet_request`; :mod:`maasops.namespace`
lists them in runbook order.
"""
