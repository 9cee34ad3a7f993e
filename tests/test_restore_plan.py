"""Restore plans are data: manifest + target facts + fleet role in, phased steps out. No host needed."""

from __future__ import annotations

import shlex
from pathlib import Path

from maasops import layouts, restore
from maasops.plan import Send
from maasops.probe import HostFacts
from maasops.restore_plan import PHASES, FleetRole, RestoreOptions, restore_plan

SECRET = Send("/sets/x/region1/config.tar.gz", "var/lib/maas/secret", "gzip")


def manifest(host="rack1", install="snap", version="3.4.2-1", roles=("rack",), snap_data="/var/snap/maas/32469",
             **kw) -> dict:
    lay = layouts.layout_for(install, layouts.parse_version(version))
    return {"host": host, "install": install, "maas_version": version, "layout": lay.name, "roles": list(roles),
            "snap_data": snap_data if install == "snap" else None, "maas_url": "http://10.0.0.1:5240/MAAS",
            "unit_states": {u: "active" for u in lay.units(set(roles))},
            "archive": {"file": "config.tar.gz", "compression": "gzip", "sha256": "ab" * 32, "size": 10,
                        "trees": list(lay.trees), "excluded": [], "files": []}, **kw}


def target(host="rack1", install="snap", version="3.5.3-1", roles=("rack",), snap_data="/var/snap/maas/37209"):
    lay = layouts.layout_for(install, layouts.parse_version(version))
    return HostFacts(host, install, version, roles, snap_data=snap_data if install == "snap" else None,
                     unit_states={u: "active" for u in lay.units(set(roles))})


def test_phases_are_in_the_procedures_order_and_a_rack_gets_the_regions_secret():
    p = restore_plan(manifest(), Path("/sets/x/rack1"), target(), FleetRole(secret_from=SECRET), RestoreOptions(),
                     "20261128T000000Z")
    phases = [s.phase for s in p.steps]
    assert phases == sorted(phases, key=PHASES.index)
    secret = next(s for s in p.steps if s.name == "write the region's secret")
    assert secret.send == SECRET and "chmod 0640" in secret.command
    assert "/var/snap/maas/common/maas/secret" in secret.command
    assert not any("dbupgrade" in s.name or "database" in s.name for s in p.steps)
    extract = next(s for s in p.steps if s.name == "extract config archive")
    assert "--transform='s,^var/snap/maas/32469,var/snap/maas/37209,'" in extract.command
    assert not any("/snap/maas/current" in s.command.replace("/var/snap/maas/current", "") for s in p.steps)
    commit = next(s for s in p.steps if s.name == "commit")
    assert set(commit.resolves) == {s.name for s in p.steps if s.name.startswith("move ")}


def test_only_the_chosen_region_loads_the_database_and_runs_dbupgrade():
    m = manifest("region1", "deb", "1:3.5.3-1", ("region",),
                 dump={"file": "maasdb.sql.gz", "compression": "gzip", "kind": "pg_dumpall", "database": "maasdb",
                       "sha256": "cd" * 32, "size": 5})
    t = target("region1", "deb", "1:3.5.3-1", ("region",))
    loader = restore_plan(m, Path("/s/region1"), t, FleetRole(True, True), RestoreOptions(), "r")
    other = restore_plan(m, Path("/s/region1"), t, FleetRole(), RestoreOptions(), "r")
    names = [s.name for s in loader.steps]
    assert names.index("save the current database (for rollback)") < names.index("load database dump") < \
        names.index("move /etc/maas aside") < names.index("dbupgrade (this region only)") < \
        names.index("start MAAS units")
    assert next(s for s in loader.steps if s.name.startswith("dbupgrade")).command == "maas-region dbupgrade"
    assert not any(s.name.startswith("dbupgrade") or s.name == "load database dump" for s in other.steps)
    load = next(s for s in loader.steps if s.name == "load database dump")
    assert load.undo and "pre-restore" in load.undo


def test_repointing_a_rack_never_puts_the_secret_or_a_hostile_url_on_the_command_line_unquoted():
    url = "http://x/'; rm -rf / #"
    p = restore_plan(manifest(), Path("/s"), target(), FleetRole(secret_from=SECRET), RestoreOptions(maas_url=url),
                     "r")
    step = next(s for s in p.steps if s.name.startswith("re-point"))
    words = shlex.split(step.command)
    assert words[:5] == ["maas", "init", "rack", "--maas-url", url]
    assert '"$(cat /var/snap/maas/common/maas/secret)"' in step.command


def test_version_rules():
    m = manifest()
    assert "--allow-upgrade" in restore._version_problem(m, target(), False)
    assert restore._version_problem(m, target(), True) is None
    assert "older" in restore._version_problem(manifest(version="3.5.1"), target(version="3.4.2"), True)
    assert "install type" in restore._version_problem(m, target(install="deb", version="1:3.4.2"), True)
    assert restore.parse_map("a=b, c=d") == {"a": "b", "c": "d"}
