"""`fab drill`: the README's main command, on a fresh DR site of 2 regions + 3 racks of mixed profiles."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from maasops.lab import lab as lab_mod
from tests.labtools import fab, need_root, sets

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_drill_restores_onto_a_fresh_site_and_proves_it_equal(tmp_path):
    need_root()
    labs = tmp_path / "drill"
    r = fab("drill", "--lab-dir", str(labs), "--backup-dir", str(tmp_path / "b"), "--regions", "2", "--racks", "3",
            "--profile", "deb-3.5,region2=snap-3.5,rack1=deb-2.9,rack2=snap-3.4,rack3=snap-2.9", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "drill PASSED" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr  # every connection and tunnel closed before the labs go down
    [set_dir] = sets(tmp_path / "b")
    [report] = set_dir.glob("drill-*.json")
    data = json.loads(report.read_text())
    assert data["ok"] and all(data["checks"].values()) and len(data["checks"]) == 7
    assert {h["host"] for h in data["hosts"]} == {"region1", "region2", "rack1", "rack2", "rack3"}
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for site in ("source", "dr"):
        assert f"mo{lab_mod.lab_id_for((labs / site).resolve())}-" not in netns


def test_the_ha_drill_with_a_dedicated_database_host_passes_with_every_proof(tmp_path):
    """MAAS's HA shape: PostgreSQL on db1 (pg_hba admits the regions only), region2 a maas-region-api alone;
    the database is dumped once over the network, loaded once, dbupgrade runs on one region."""
    if os.geteuid() != 0:
        pytest.fail("the lab needs root")
    labs = tmp_path / "ha"
    r = fab("drill", "--lab-dir", str(labs), "--backup-dir", str(tmp_path / "b"), "--regions", "2", "--racks", "2",
            "--dedicated-db", "--profile", "deb-3.5,rack2=snap-3.5", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    [set_dir] = sets(tmp_path / "b")
    data = json.loads(next(set_dir.glob("drill-*.json")).read_text())
    assert data["ok"] and all(data["checks"].values()) and len(data["checks"]) == 7
    region1 = json.loads((set_dir / "region1" / "manifest.json").read_text())
    assert region1["dump"]["how"] == "network" and not list((set_dir / "region2").glob("maasdb.sql*"))
    assert "dbupgrade on region1" in r.stdout


def test_a_drill_with_directory_dumps_proves_large_objects_and_rows_equal(tmp_path):
    """pg_dump -Fd -j N on the source, pg_restore -j N on the DR site: MAAS 2.9 keeps boot images in large
    objects, and the proof fingerprints them with every table."""
    need_root()
    r = fab("drill", "--lab-dir", str(tmp_path / "labs"), "--backup-dir", str(tmp_path / "b"), "--racks", "1",
            "--profile", "deb-2.9", "--dump-format", "directory", timeout=600)
    assert r.returncode == 0 and "drill PASSED" in r.stdout, r.stdout + r.stderr
    [set_dir] = sets(tmp_path / "b")
    dump = json.loads((set_dir / "region1" / "manifest.json").read_text())["dump"]
    assert dump["kind"] == "roles+pg_dump-Fd" and dump["file"] == "maasdb.tar.zst"
    assert "database: 39/39 tables equal to region1's" in r.stdout  # pg_largeobject among them


def test_a_drill_through_the_offsite_repository_restores_image_storage_from_its_own_part(tmp_path):
    """--offsite: the set goes into the lab's restic repository over sftp, and the DR site is restored from it;
    MAAS 3.5 keeps boot images in image-storage, which a repository set holds as its own part."""
    need_root()
    r = fab("drill", "--lab-dir", str(tmp_path / "labs"), "--backup-dir", str(tmp_path / "b"), "--racks", "1",
            "--offsite", timeout=600)
    assert r.returncode == 0 and "drill PASSED" in r.stdout, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    # the installed restic, asked here, and the path the drill says it took with it
    installed = subprocess.run(["restic", "version"], capture_output=True, text=True, check=True).stdout.split()[1]
    parallel = tuple(int(x) for x in installed.split(".")[:2]) >= (0, 17)
    said = f"restic {installed}: restore from a repository by " + ("parallel restic dump" if parallel else
                                                                    "restic dump loading one blob after another")
    assert said in r.stdout, r.stdout
    report = r.stdout.rsplit("; report ", 1)[1].split()[0]  # beside the set's manifests read from the repository
    assert json.loads(open(report).read())["restic"].startswith(said)
