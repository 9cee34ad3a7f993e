"""Backup plans are data: facts + options in, steps out. No host needed."""

from __future__ import annotations

import shlex

import pytest

from maasops import backup_plan as bp
from maasops import plan, probe, services
from maasops.command import Cmd
from maasops.compression import codec
from maasops.parts import database
from maasops.plan import StepId
from maasops.probe import DatabaseFacts
from tests.builders import facts, text


def test_region_backup_dumps_live_alongside_and_stops_only_for_the_archive():
    p = bp.backup_plan(facts(), "local", bp.BackupOptions())
    assert [s.id for s in p.steps] == [StepId.DB_CHECK, StepId.DUMP, StepId.STOP_UNITS, StepId.ARCHIVE,
                                       StepId.START_UNITS, StepId.CHECK_UNITS, StepId.CHECK_REGION]
    check, dump, stop = p.steps[:3]
    assert text(check).startswith("runuser -u postgres --") and check.check and "pg_stat_activity" in text(check)
    assert "pg_dumpall --roles-only && pg_dump --clean --create --if-exists maasdb" in text(dump)
    assert text(dump).endswith(" | " + str(codec("zstd").compress)) and dump.background and not dump.undo
    start, check = p.steps[4:6]
    assert str(stop.undo).endswith(f" && {check.command}") and check.resolves == (stop.id,)
    assert "setsid -f flock -o /var/lib/maasops/lock" in text(stop)  # the host's guard, armed before the stop
    assert text(start).endswith("&& rm -f /var/lib/maasops/guard-units-stopped")
    # waits through "activating"
    assert "is-active" in str(check.command) and f"sleep {services.POLL}" in str(check.command)
    assert "maas-apiserver" in text(stop) and "maas-temporal-worker" in text(stop)
    assert "(alongside the next steps)" in plan.render([p])


def test_stopping_postgresql_as_the_doc_does_makes_the_dump_finish_first():
    p = bp.backup_plan(facts(), "local", bp.BackupOptions(stop_postgresql=True))
    assert [s.id for s in p.steps] == [StepId.DB_CHECK, StepId.DUMP, StepId.STOP_UNITS, StepId.STOP_POSTGRESQL,
                                       StepId.ARCHIVE, StepId.START_POSTGRESQL, StepId.START_UNITS,
                                       StepId.CHECK_UNITS, StepId.CHECK_REGION]
    assert not p.steps[1].background


def test_a_network_database_is_checked_and_dumped_the_same_way():
    db = DatabaseFacts("remote", "10.0.0.5", 5433, "maasdb", "maas", dedicated=False)
    check, dump = bp.backup_plan(facts(db=db), "network", bp.BackupOptions()).steps[:2]
    conn = "-h 10.0.0.5 -p 5433 -U maas "
    assert conn in text(check) and conn in text(dump) and dump.label == "dump database (pg_dump from network)"
    assert text(check).startswith("PGPASSWORD=") and text(dump).startswith("PGPASSWORD=")
    assert "--create" not in text(dump)  # the MAAS role loads it into its database; it cannot create one


def test_postgresql_stays_up_when_asked_and_shared_servers_get_maas_roles_and_pg_dump():
    db = DatabaseFacts("local", "localhost", 5432, "maas db", "maas", dedicated=False)
    p = bp.backup_plan(facts(db=db), "local", bp.BackupOptions(stop_postgresql=False))
    assert not any("postgresql" in s.label for s in p.steps)
    dump = p.step(StepId.DUMP)
    # issue 23: the MAAS role and its password are kept, the other databases' roles left out
    assert dump.label == "dump database (MAAS's roles + pg_dump)" and p.spec.dump.kind == "roles+pg_dump"
    words = shlex.split(text(dump))
    script = words[words.index("-c") + 1]
    assert script.endswith("&& pg_dump --clean --create --if-exists 'maas db' ; }")  # quoted
    roles = shlex.split(script[2:].rsplit(" && pg_dump --clean", 1)[0])
    assert roles[:4] == ["bash", "-o", "pipefail", "-c"] and "-d 'maas db'" in roles[4]
    only_maas = bp.backup_plan(facts(db=db), "local", bp.BackupOptions(db_only_maas=True))
    assert only_maas.spec.dump.kind == "pg_dump"


def test_cache_is_excluded_and_images_only_on_request():
    old = bp.backup_plan(facts(version="1:2.9.2", roles=("rack",), db=None), None, bp.BackupOptions())
    assert "--exclude=var/lib/maas/boot-resources" in text(old.step(StepId.ARCHIVE))
    new = bp.backup_plan(facts(roles=("rack",), db=None), None, bp.BackupOptions())
    assert "image-storage" not in text(new.step(StepId.ARCHIVE))
    assert "--exclude=var/lib/maas/tftp_root" in text(new.step(StepId.ARCHIVE))
    new = bp.backup_plan(facts(roles=("rack",), db=None), None, bp.BackupOptions(exclude_images=True))
    assert "--exclude=var/lib/maas/image-storage" in text(new.step(StepId.ARCHIVE))


def test_snap_uses_snap_stop_and_resolves_snap_data_revision():
    f = facts(install="snap", version="3.4.2-1", roles=("rack",), db=None, snap_data="/var/snap/maas/32469")
    p = bp.backup_plan(f, None, bp.BackupOptions())
    assert text(p.steps[0]).endswith("&& snap stop maas") and str(p.steps[0].undo).startswith("snap start maas && ")
    tar = text(p.step(StepId.ARCHIVE))
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
    assert "maas-dhcpd6" not in text(p.steps[0]) and "maas-dhcpd6" not in str(p.steps[0].undo)


def test_database_is_dumped_once_by_its_owner():
    remote = DatabaseFacts("remote", "10.0.0.11", 5432, "maasdb", "maas")
    fleet_facts = {"region1": facts(), "region2": facts("region2", db=remote), "rack1": facts("rack1", db=None)}
    owners = database.dump_owners(fleet_facts, {"region1": "10.0.0.11", "region2": "10.0.0.12"})
    assert owners == {"region1": "local"}
    owners = database.dump_owners({"region2": facts("region2", db=remote), "region3": facts("region3", db=remote)}, {})
    assert owners == {"region2": "network"}


def test_two_regions_with_a_database_each_are_refused_unless_told_which():
    two = {"region1": facts(), "region2": facts("region2")}
    with pytest.raises(database.DatabaseConflict, match="region1: local maasdb; region2: local maasdb"):
        database.dump_owners(two, {})
    assert database.dump_owners(two, {}, dump_from="region2") == {"region2": "local"}


def test_network_dump_reads_the_password_on_the_host_only():
    remote = DatabaseFacts("remote", "db.example", 5432, "maasdb", "maas")
    p = bp.backup_plan(facts(db=remote), "network", bp.BackupOptions())
    dump = p.step(StepId.DUMP)
    assert "k=database_pass" in text(dump) and "/etc/maas/regiond.conf" in text(dump)
    assert "database_pass" not in plan.render([p]).replace("k=database_pass", "")


def test_render_shows_every_command_and_refusals():
    shown = plan.render([bp.backup_plan(facts(), "local", bp.BackupOptions()),
                         plan.HostPlan("rack9", None, error="no MAAS here")])
    assert "pg_dumpall --roles-only" in shown and "systemctl start" in shown and "REFUSED: no MAAS here" in shown


def test_probe_says_where_the_inventory_differs():
    from maasops.inventory import InventoryHost
    from maasops.probe import differences
    declared = InventoryHost("region1", ("region",), "region1", install="snap", version="3.5", database="local")
    assert differences(declared, facts()) == ["inventory says install=snap, host has deb"]
    assert differences(None, facts()) == []


def test_a_vault_region_without_a_database_name_is_refused_never_dumping_postgres():
    vault_db = DatabaseFacts("local", "localhost", 5432, "", "", dedicated=True)
    p = bp.backup_plan(facts(db=vault_db, vault=True), "local", bp.BackupOptions(allow_vault=True))
    assert p.error and "--database-name" in p.error and not p.steps
    p = bp.backup_plan(facts(db=vault_db, vault=True), "local", bp.BackupOptions(allow_vault=True,
                                                                                  database_name="maasdb"))
    assert p.error is None and text(p.step(StepId.DUMP)).count("maasdb") == 1


def test_compress_auto_is_zstd_where_the_host_has_it_and_gzip_elsewhere_and_the_spec_names_it():
    for tools, want in ((probe.TOOLS, "zstd"), (("tar", "gzip", "pg_dump", "pg_dumpall", "psql"), "gzip")):
        p = bp.backup_plan(facts(tools=tools), "local", bp.BackupOptions(compress="auto"))
        assert p.error is None and p.spec.compress == want
        assert p.step(StepId.DUMP).fetch == "maasdb.sql" + codec(want).suffix
        assert text(p.step(StepId.ARCHIVE)).endswith(" | " + str(codec(want).compress))


def test_a_compressor_the_host_lacks_is_refused_before_anything_runs():
    p = bp.backup_plan(facts(tools=("tar", "gzip")), "local", bp.BackupOptions(compress="zstd"))
    assert p.error and "zstd is not installed" in p.error and not p.steps


def test_a_vault_regions_network_dump_takes_the_operators_role_and_its_password_over_the_channel():
    """Issue 23: regiond.conf names no role (Vault keeps it): refused without --database-user, else the dump and
    its check connect as that role, the password coming as the step's PGPASSWORD, never read from regiond.conf."""
    vault = DatabaseFacts("remote", "10.0.0.8", 5432, "", "")
    f = facts(db=vault, vault=True)
    options = bp.BackupOptions(allow_vault=True, database_name="maasdb", compress="zstd")
    assert "--database-user" in bp.refusal(f, options, "network")
    creds = database.Credentials("maas", "/home/op/maasdb.pass")
    options = bp.BackupOptions(allow_vault=True, database_name="maasdb", compress="zstd", credentials=creds)
    assert bp.refusal(f, options, "network") is None
    p = bp.backup_plan(f, "network", options)
    for step in (p.step(StepId.DB_CHECK), p.step(StepId.DUMP)):
        assert step.password_file == "/home/op/maasdb.pass"
        assert "-U maas" in text(step) and "PGPASSWORD" not in text(step) and "database_pass" not in text(step)
    assert "(PGPASSWORD from /home/op/maasdb.pass)" in plan.render([p])
    # regiond.conf's own role and password where it names them: no file
    own = bp.backup_plan(facts(db=DatabaseFacts("remote", "10.0.0.8", 5432, "maasdb", "maas")), "network", options)
    assert own.step(StepId.DUMP).password_file is None and "PGPASSWORD=" in text(own.step(StepId.DUMP))


def test_the_operators_password_file_must_be_its_owners_alone(tmp_path):
    f = tmp_path / "pass"
    f.write_text("s3cret\nignored\n")
    f.chmod(0o644)
    with pytest.raises(database.PasswordFileError, match="readable by others"):
        database.password(str(f))
    f.chmod(0o600)
    assert database.password(str(f)) == b"s3cret"
    f.write_text("\n")
    with pytest.raises(database.PasswordFileError, match="no password"):
        database.password(str(f))


def test_a_command_given_a_password_reads_it_after_the_ready_line():
    from maasops import channel
    script = str(channel._watched(Cmd("pg_dump maasdb"), "ready-x", False, True, reads_password=True))
    ready, read = script.index("ready-x"), script.index("IFS= read -r PGPASSWORD && export PGPASSWORD")
    assert ready < read < script.index("exec 3<&0") < script.index("pg_dump maasdb")
