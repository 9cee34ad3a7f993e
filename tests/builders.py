"""Values the unit tests build: a host as the probe finds it, a host manifest as a set records it, a target, a
repository's set, a command's options as its command line gives them; and the samples of a metrics textfile.
Plain values, no host."""

from __future__ import annotations

import re

from maasops import layouts, probe
from maasops import manifest as mf
from maasops.options import TaskOptions, TaskSpec
from maasops.probe import DatabaseFacts, HostFacts
from maasops.reposet import RepoSet, Snapshot

SAMPLE = re.compile(r'^(\w+)\{operation="([^"]*)",deployment="((?:[^"\\]|\\.)*)"\} (\S+)$')

DB_LOCAL = DatabaseFacts("local", "localhost", 5432, "maasdb", "maas", dedicated=True)


def facts(host="region1", install="deb", version="1:3.5.3-1", roles=("region",), db=DB_LOCAL, **kw) -> HostFacts:
    """A host as the probe finds it: its layout's units active, its trees present, every tool there."""
    lay = layouts.layout_for(install, layouts.parse_version(version))
    states = {u: "active" for u in lay.units(set(roles))}
    present = lay.trees + lay.region_trees + lay.cache_excludes + lay.image_dirs
    kw.setdefault("tools", probe.TOOLS)  # a host as the probe finds it: tar, gzip, zstd, pg_dump ...
    return HostFacts(host, install, version, roles, database=db, unit_states=states, present=present, **kw)


def text(step) -> str:
    """A step's command as the host's shell receives it."""
    return str(step.command)


def manifest(host="rack1", install="snap", version="3.4.2-1", roles=("rack",), snap_data="/var/snap/maas/32469",
             dump=None) -> mf.HostManifest:
    """A host manifest as a backup of that host records it (an archive of its layout's trees)."""
    lay = layouts.layout_for(install, layouts.parse_version(version))
    snap_data = snap_data if install == "snap" else None
    trees = lay.archived_trees(set(roles))
    archive = mf.Archive("config.tar.gz", "gzip", 10, "ab" * 32, None, None, trees,
                         tuple(layouts.on_host(t, snap_data) for t in trees),
                         tuple(layouts.on_host(p, snap_data) for p in lay.cache_excludes), ())
    return mf.HostManifest(host, host, install, version, lay.name, roles, None, snap_data, None,
                           "http://10.0.0.1:5240/MAAS", None, False, (),
                           {u: "active" for u in lay.units(set(roles))}, archive, dump)


def target(host="rack1", install="snap", version="3.5.3-1", roles=("rack",), snap_data="/var/snap/maas/37209",
           **kw):
    """A restore's target as the probe finds it, its units active."""
    lay = layouts.layout_for(install, layouts.parse_version(version))
    return HostFacts(host, install, version, roles, snap_data=snap_data if install == "snap" else None,
                     unit_states={u: "active" for u in lay.units(set(roles))}, **kw)


def repo_set(dep: str, stamp: str, state: str | None, verified: str = "") -> RepoSet:
    """A repository's set: ``state`` None is a set whose manifests snapshot is not there yet."""
    tags = {"state": state, "verified": verified} if state else {}
    return RepoSet(dep, stamp, Snapshot(f"id-{dep}-{stamp}", "", tags) if state else None)


def parsed(spec: TaskSpec, **given: object) -> TaskOptions:
    """A command's options as its command line gives them, the flags given as keywords (every other at its table
    default), parsed and checked."""
    return spec.parse(given)


def samples(text: str) -> dict[tuple[str, str, str], float]:
    """Every sample of a textfile; each metric has its HELP and TYPE lines."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) maasops_\w+ ", line), line
            continue
        m = SAMPLE.match(line)
        assert m, line
        out[m.group(1), m.group(2), m.group(3)] = float(m.group(4))
    return out
