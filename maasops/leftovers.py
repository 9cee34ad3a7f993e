"""What older restores (and killed backups) left on a host: listed, or removed keeping the newest ``keep``.

A restore keeps, on each host, the trees it replaced (aside copies), the
database it replaced (renamed) and its run records, so that ``--rollback`` can
put them back; each restore prunes what is older than the newest ``--keep``.
``maasops cleanup`` (:mod:`maasops.commands.cleanup`) shows the rest, or removes it on
demand, keeping the newest ``--keep``. A backup killed while it wrote a directory-format
dump on the host leaves that dump (0700): the next backup removes it once it is
``database.STALE_MINUTES`` old, and so does the removal here.
"""

from __future__ import annotations

from maasops import channel, fleet, probe
from maasops.command import Cmd, Q, Word
from maasops.hostpaths import ASIDE, ROLLED_BACK, RUN_ROOT
from maasops.parts import database
from maasops.parts.database import server_on
from maasops.restore_plan import prune_command


def _prefixes(f: probe.HostFacts) -> list[str]:
    out = [f"{RUN_ROOT}/"]
    for tree in f.layout.archived_trees(set(f.roles)):
        path = f.on_host(tree)
        out += [f"{path}{ASIDE}", f"{path}{ROLLED_BACK}", f"{path}/{ASIDE}", f"{path}/{ROLLED_BACK}"]
    return out


def _server(f: probe.HostFacts) -> database.Server | None:
    if f.database is None or f.database.location != "local":
        return None
    return server_on(f, "local")


def list_command(f: probe.HostFacts) -> Cmd:
    """Print every leftover on the host (with its size), and every kept database."""
    parts = [Cmd("{ ls -1d --", Word(Q(p), "[0-9]*"), "2>/dev/null || true; } | while IFS= read -r p; do du -sh -- "
                 "\"$p\"; done;")
             for p in _prefixes(f)]
    parts.append(Cmd(database.stale_dumps(remove=False), ";"))
    server = _server(f)
    if server:
        listing = database.sql(server, "SELECT datname FROM pg_database WHERE left(datname, "
                                       f"{len(database.KEPT_PREFIX)}) = '{database.KEPT_PREFIX}' ORDER BY datname")
        parts.append(Cmd(listing, "| sed 's/^/database\\t/';"))
    return Cmd(*parts, "true")


def on_host(t: fleet.Target, leftover_runs: int, dry_run: bool) -> list[str]:
    """The leftovers on one target, one line each: listed (``dry_run``), or removed but the newest ``keep`` of each
    kind (what it printed). A host with no MAAS has none."""
    f = probe.probe(t.connection)
    if f.install is None:
        return []
    cmd = list_command(f) if dry_run else prune_command(f, leftover_runs, _server(f))
    return channel.run(t.connection, cmd, "cleanup", user="root").stdout.splitlines()
