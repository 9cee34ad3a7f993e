"""Restore plans are data: manifest + target facts + fleet role in, phased steps out. No host needed."""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace

from maasops import layouts, preflight
from maasops import manifest as mf
from maasops.backupset import LocalFiles
from maasops.plan import Send, StepId
from maasops.probe import DatabaseFacts
from maasops.restore_plan import PHASES, FleetRole, RestoreOptions, restore_plan
from tests.builders import DB_LOCAL, manifest, target, text

SECRET = Send("/sets/x/region1/config.tar.gz", "var/lib/maas/secret", "gzip")


def test_phases_are_in_the_procedures_order_and_a_rack_gets_the_regions_secret():
    p = restore_plan(manifest(), LocalFiles(Path("/sets/x")), target(), FleetRole(secret_from=SECRET), RestoreOptions(),
                     "20261128T000000Z")
    phases = [s.phase for s in p.steps]
    assert phases == sorted(phases, key=PHASES.index)
    secret = p.step(StepId.WRITE_SECRET)
    assert secret.send == SECRET and "chmod 0640" in text(secret)
    assert "/var/snap/maas/common/maas/secret" in text(secret)
    assert not p.step(StepId.DBUPGRADE) and not p.step(StepId.LOAD_DATABASE)
    extract = p.step(StepId.EXTRACT)
    assert "--transform=s,^var/snap/maas/32469,var/snap/maas/37209," in shlex.split(text(extract))
    assert "--no-same-permissions" in text(extract) and "--delay-directory-restore" in text(extract)
    assert text(extract).endswith("-- var/snap/maas/32469 var/snap/maas/common/maas var/snap/maas/common/snap_mode "
                                  "var/snap/maas/common/certificates")
    assert not any("/snap/maas/current" in text(s).replace("/var/snap/maas/current", "") for s in p.steps)
    assert set(p.step(StepId.COMMIT).resolves) == {StepId.MOVE_ASIDE, StepId.LOAD_DATABASE}


def test_only_the_chosen_region_loads_the_database_and_runs_dbupgrade():
    dump = mf.Dump("maasdb.sql.gz", "gzip", 5, "cd" * 32, None, None, "roles+pg_dump", "maasdb", "local",
                   layouts.DUMP_COMPLETE_LINE, 50)
    m = manifest("region1", "deb", "1:3.5.3-1", ("region",), dump=dump)
    db = DatabaseFacts("local", "localhost", 5432, "maasdb", "maas", True)
    t = target("region1", "deb", "1:3.5.3-1", ("region",), database=db)
    loader = restore_plan(m, LocalFiles(Path("/s")), t, FleetRole(True, True), RestoreOptions(), "r")
    other = restore_plan(m, LocalFiles(Path("/s")), t, FleetRole(), RestoreOptions(), "r")
    ids = [s.id for s in loader.steps]
    assert ids.index(StepId.SET_ASIDE_DATABASE) < ids.index(StepId.LOAD_DATABASE) < ids.index(StepId.MOVE_ASIDE) < \
        ids.index(StepId.DBUPGRADE) < ids.index(StepId.START_UNITS)
    assert text(loader.step(StepId.DBUPGRADE)) == "maas-region dbupgrade"
    assert not other.step(StepId.DBUPGRADE) and not other.step(StepId.LOAD_DATABASE)
    keep, load = loader.step(StepId.SET_ASIDE_DATABASE), loader.step(StepId.LOAD_DATABASE)
    assert "RENAME TO" in text(keep) and "db=maasdb" in text(keep)  # the name goes as a psql variable
    assert load.undo and "kept-db maasops_kept_r maasdb" in str(load.undo)


def test_repointing_a_rack_edits_rackd_conf_as_data_never_a_command_line():
    url = "http://x/'; rm -rf / #"
    p = restore_plan(manifest(), LocalFiles(Path("/s")), target(), FleetRole(secret_from=SECRET),
                     RestoreOptions(maas_url=url), "r")
    step = p.step(StepId.REPOINT_RACK)
    words = shlex.split(text(step))
    assert "MAASOPS_BLOCK=maas_url:\n- " + url + "\n" in words  # one word, handed to awk through its environment
    assert "secret" not in text(step) and "register" not in text(step)


def test_a_secondary_region_keeps_its_own_credentials_only_when_the_load_leaves_the_servers_roles_alone():
    m = manifest("region2", "snap", "3.5.3-1", ("region",), snap_data="/var/snap/maas/37209")
    m = mf.HostManifest(**{**m.__dict__, "database": DatabaseFacts("remote", "10.0.0.1", 5432, "maasdb", "maas")})
    t = target("region2", "snap", "3.5.3-1", ("region",))
    options = RestoreOptions(database_host="10.9.9.11")

    def repoint(roles_from_set: bool) -> str:
        p = restore_plan(m, LocalFiles(Path("/s")), t, FleetRole(roles_from_set=roles_from_set), options, "r")
        return text(p.step(StepId.SET_DATABASE_HOST))
    # A network load (a dedicated server): the server keeps its roles, so the host keeps its own password.
    assert "MAASOPS_KEYS='database_port database_name database_user database_pass'" in repoint(False)
    assert "/var/snap/maas/37209.maasops-aside-r/regiond.conf" in repoint(False)
    # A local cluster's dump sets the roles' passwords: the restored (set's) credentials are the server's.
    assert "MAASOPS_KEYS" not in repoint(True) and "database_host: 10.9.9.11" in repoint(True)


def test_version_rules():
    m = manifest()
    assert "--allow-upgrade" in preflight.version_problem(m, target(), False)
    assert preflight.version_problem(m, target(), True) is None
    assert "older" in preflight.version_problem(manifest(version="3.5.1"), target(version="3.4.2"), True)
    assert "install type" in preflight.version_problem(m, target(install="deb", version="1:3.4.2"), True)
    assert preflight.parse_map("a=b, c=d") == {"a": "b", "c": "d"}


def test_a_tree_that_is_a_mount_point_is_emptied_into_an_aside_directory_inside_it():
    m = manifest("rack1", "deb", "1:3.5.3-1", ("rack",))
    t = target("rack1", "deb", "1:3.5.3-1", ("rack",), mountpoints=("/var/lib/maas",))
    p = restore_plan(m, LocalFiles(Path("/s")), t, FleetRole(), RestoreOptions(), "20261128T000000Z")
    moves = {s.key: s for s in p.steps if s.id == StepId.MOVE_ASIDE}
    assert "mv -T" in text(moves["/etc/maas"])
    assert "mkdir -m 0700 /var/lib/maas/.maasops-aside-20261128T000000Z" in text(moves["/var/lib/maas"])
    assert "mv -T" not in text(moves["/var/lib/maas"])


def test_only_a_dump_that_holds_the_roles_gives_the_servers_roles_the_sets_passwords():
    def loads_roles(kind: str, loader: str | None = "region1") -> bool:
        holder = SimpleNamespace(dump=SimpleNamespace(kind=kind, how="local"))
        records = SimpleNamespace(hosts={"region1": holder}, set=SimpleNamespace(
            database=SimpleNamespace(dumped_by="region1")))
        return preflight.Preflight(check=SimpleNamespace(records=records), pairs=[], loader=loader).loads_roles

    assert loads_roles("roles+pg_dump") and loads_roles("pg_dumpall")
    assert not loads_roles("pg_dump")  # a shared server's (or --db-only-maas) dump: the server's roles stay
    assert not loads_roles("roles+pg_dump", loader=None)


def test_a_sets_dump_is_loaded_by_no_root_and_no_superuser_and_the_plan_says_who():
    m = manifest("region1", "deb", "1:3.5.3-1", ("region",), dump=mf.Dump(
        "maasdb.sql.zst", "zstd", 5, "cd" * 32, None, None, "roles+pg_dump", "maasdb", "local", "-- x", 50))
    t = target("region1", "deb", "1:3.5.3-1", ("region",), database=DB_LOCAL)
    load = restore_plan(m, LocalFiles(Path("/s")), t, FleetRole(True, True), RestoreOptions(), "r").step(
        StepId.LOAD_DATABASE)
    cmd = text(load)
    # the roles part through the host's filter only; the database maasops's own; its contents as the loader
    roles, database = cmd.index("| { grep -E -e '^CREATE ROLE"), cmd.index("CREATE DATABASE")
    assert cmd.index("| awk '!done { print }") < roles < database
    assert ("| awk 'go { print } /^\\\\connect / { go = 1 }' | PGPASSWORD=\"$pw\" PGCLIENTENCODING=UTF8 PGOPTIONS='-c "
            "standard_conforming_strings=on' runuser -u nobody -- psql -h localhost -p 5432 -U maasops_loader -X -q "
            "-v ON_ERROR_STOP=1") in cmd
    assert cmd.index("ON_ERROR_STOP=1 -o /dev/null -f - -d maasdb") < cmd.index("DROP ROLE :\"loader\"")
    assert "maasops_loader (a member of maas, no superuser)" in load.label
    network = mf.Dump("maasdb.sql.zst", "zstd", 5, "cd" * 32, None, None, "pg_dump", "maasdb", "network", "-- x", 50)
    remote = DatabaseFacts("remote", "10.0.0.9", 5432, "maasdb", "maas")
    load = restore_plan(manifest("region1", "deb", "1:3.5.3-1", ("region",), dump=network), LocalFiles(Path("/s")),
                        target("region1", "deb", "1:3.5.3-1", ("region",), database=remote), FleetRole(True, True),
                        RestoreOptions(), "r").step(StepId.LOAD_DATABASE)
    assert ("PGOPTIONS='-c standard_conforming_strings=on' runuser -u nobody -- psql -h 10.0.0.9 -p 5432 -U maas -X -q "
            "-v ON_ERROR_STOP=1") in text(load)
    assert load.label == "load database dump: as maas (network), psql as the OS user nobody"
