"""Backup plans are data: facts + options in, steps out. No host needed."""

from __future__ import annotations

import shlex

from maasops import backup_plan as bp
from maasops import layouts, plan, probe
from maasops.probe import DatabaseFacts, HostFacts

DB_LOCAL = DatabaseFacts("local", "localhost", 5432, "maasdb", "maas", dedicated=True)


def facts(host="region1", install="deb", version="1:3.5.3-1", roles=("region",), db=DB_LOCAL, **kw) -> HostFacts:
    lay = layouts.layout_for(install, layouts.parse_version(version))
    states = {u: "active" for u in lay.units(set(roles))}
    present = lay.trees + lay.region_trees + lay.cache_excludes + lay.image_dirs
    kw.setdefault("tools", probe.TOOLS)  # a host as the probe finds it: tar, gzip, zstd, pg_dump ...
    return HostFacts(host, install, version, roles, database=db, unit_states=states, present=present, **kw)


def test_region_backup_dumps_live_alongside_and_stops_only_for_the_archive():
    p = bp.backup_plan(facts(), "local", bp.BackupOptions())
    names = [s.name for s in p.steps]
    assert names == [bp.SESSIONS_STEP, "dump database (pg_dumpall -c)", "stop MAAS units",
                     "archive config trees", "start MAAS units", "check MAAS units are active"]
    check, dump, stop = p.steps[:3]
    assert check.user == dump.user == "postgres" and check.check and "pg_stat_activity" in check.command
    assert dump.command == "pg_dumpall -c | gzip -1" and dump.background and not dump.undo
    assert stop.undo == p.steps[4].command and p.steps[4].resolves == (stop.name,)
    assert "maas-apiserver" in stop.command and "maas-temporal-worker" in stop.command
    assert "(alongside the next steps)" in plan.render([p])


def test_stopping_postgresql_as_the_doc_does_makes_the_dump_finish_first():
    p = bp.backup_plan(facts(), "local", bp.BackupOptions(stop_postgresql=True))
    assert [s.name for s in p.steps] == [bp.SESSIONS_STEP, "dump database (pg_dumpall -c)", "stop MAAS units",
                                         "stop postgresql", "archive config trees", "start postgresql",
                                         "start MAAS units", "check MAAS units are active"]
    assert not p.steps[1].background


def test_a_network_database_is_checked_and_dumped_the_same_way():
    db = DatabaseFacts("remote", "10.0.0.5", 5433, "maasdb", "maas", dedicated=False)
    check, dump = bp.backup_plan(facts(db=db), "network", bp.BackupOptions()).steps[:2]
    conn = "-h 10.0.0.5 -p 5433 -U maas "
    assert conn in check.command and conn in dump.command and dump.name == "dump database (pg_dump from network)"
    assert check.command.startswith("PGPASSWORD=") and dump.command.startswith("PGPASSWORD=")


def test_postgresql_stays_up_when_asked_and_shared_servers_get_pg_dump():
    db = DatabaseFacts("local", "localhost", 5432, "maas db", "maas", dedicated=False)
    p = bp.backup_plan(facts(db=db), "local", bp.BackupOptions(stop_postgresql=False))
    assert not any("postgresql" in s.name for s in p.steps)
    dump = next(s for s in p.steps if s.fetch and s.fetch.startswith("maasdb"))
    assert shlex.split(dump.command.split("|")[0])[-1] == "maas db"  # quoted


def test_cache_is_excluded_and_images_only_on_request():
    old = bp.backup_plan(facts(version="1:2.9.2", roles=("rack",), db=None), None, bp.BackupOptions())
    tar = next(s for s in old.steps if s.name == "archive config trees").command
    assert "--exclude=var/lib/maas/boot-resources" in tar
    new = bp.backup_plan(facts(roles=("rack",), db=None), None, bp.BackupOptions())
    assert "image-storage" not in next(s.command for s in new.steps if s.fetch)
    new = bp.backup_plan(facts(roles=("rack",), db=None), None, bp.BackupOptions(exclude_images=True))
    assert "--exclude=var/lib/maas/image-storage" in next(s.command for s in new.steps if s.fetch)


def test_snap_uses_snap_stop_and_resolves_snap_data_revision():
    f = facts(install="snap", version="3.4.2-1", roles=("rack",), db=None, snap_data="/var/snap/maas/32469")
    p = bp.backup_plan(f, None, bp.BackupOptions())
    assert p.steps[0].command == "snap stop maas" and p.steps[0].undo == "snap start maas"
    tar = next(s.command for s in p.steps if s.fetch)
    assert "var/snap/maas/32469" in tar and "snap/maas/current" not in tar.replace("var/snap/maas/current", "")
    assert "/snap/maas/current" not in tar


def test_vault_is_refused_unless_allowed():
    assert "Vault" in bp.backup_plan(facts(vault=True), "local", bp.BackupOptions()).error
    p = bp.backup_plan(facts(vault=True), "local", bp.BackupOptions(allow_vault=True))
    assert p.error is None and any("Vault" in n for n in p.notes)


def test_inactive_units_are_neither_stopped_nor_started():
    f = facts(roles=("rack",), db=None)
    f.unit_states["maas-dhcpd6"] = "inactive"
    p = bp.backup_plan(f, None, bp.BackupOptions())
    assert "maas-dhcpd6" not in p.steps[0].command and "maas-dhcpd6" not in p.steps[0].undo


def test_database_is_dumped_once_by_its_owner():
    remote = DatabaseFacts("remote", "10.0.0.11", 5432, "maasdb", "maas")
    fleet_facts = {"region1": facts(), "region2": facts("region2", db=remote), "rack1": facts("rack1", db=None)}
    owners = bp.dump_owners(fleet_facts, {"region1": "10.0.0.11", "region2": "10.0.0.12"})
    assert owners == {"region1": "local"}
    owners = bp.dump_owners({"region2": facts("region2", db=remote), "region3": facts("region3", db=remote)}, {})
    assert owners == {"region2": "network"}


def test_network_dump_reads_the_password_on_the_host_only():
    remote = DatabaseFacts("remote", "db.example", 5432, "maasdb", "maas")
    p = bp.backup_plan(facts(db=remote), "network", bp.BackupOptions())
    dump = next(s for s in p.steps if s.fetch and "maasdb" in s.fetch)
    assert "sed -n 's/^database_pass" in dump.command and "/etc/maas/regiond.conf" in dump.command


def test_render_shows_every_command_and_refusals():
    text = plan.render([bp.backup_plan(facts(), "local", bp.BackupOptions()),
                        plan.HostPlan("rack9", None, error="no MAAS here")])
    assert "pg_dumpall -c" in text and "systemctl start" in text and "REFUSED: no MAAS here" in text


def test_probe_says_where_the_inventory_differs():
    from maasops.inventory import InventoryHost
    from maasops.probe import differences
    declared = InventoryHost("region1", ("region",), "region1", install="snap", version="3.5", database="local")
    assert differences(declared, facts()) == ["inventory says install=snap, host has deb"]
    assert differences(None, facts()) == []


def test_a_compressor_the_host_lacks_is_refused_before_anything_runs():
    p = bp.backup_plan(facts(tools=("tar", "gzip")), "local", bp.BackupOptions(compress="zstd"))
    assert p.error and "zstd is not installed" in p.error and not p.steps
