"""Regions whose database is not a plain local server (issue 13): maas-test-db, and Vault."""

from __future__ import annotations

import pytest

from maasops import probe
from maasops.results import PARTIAL
from tests.labtools import fab, sets, small_lab, targets

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def testdb(tmp_path_factory):
    yield from small_lab(tmp_path_factory, "testdb", "snap-3.5-testdb")


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    yield from small_lab(tmp_path_factory, "vault", "deb-3.5-vault")


def test_a_maas_test_db_region_is_recognised_dumped_and_restored_through_its_socket(testdb, tmp_path):
    t = targets(testdb)["region1"]
    db = probe.probe(t.connection).database
    assert (db.location, db.host) == ("maas-test-db", "/var/snap/maas/common/test-db-socket")  # not "remote"
    # ... a path that exists only inside the maas snap's mount namespace: on the host, maas-test-db's own socket
    assert testdb.run("region1", "test -e /var/snap/maas/common/test-db-socket", check=False).returncode == 1
    r = fab("backup", "--inventory", str(testdb.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout
    [s] = sets(tmp_path)
    assert list((s / "region1").glob("maasdb.sql*"))
    hostname = ("psql -XAt -h /var/snap/maas-test-db/common/postgres/sockets -U maas -d maasdb "
                "-c 'SELECT hostname FROM maasserver_node WHERE id = 3'")
    backed_up = testdb.run("region1", hostname).stdout.strip()
    testdb.run("region1", "psql -XAtq -h /var/snap/maas-test-db/common/postgres/sockets -U maas -d maasdb "
                          "-c \"UPDATE maasserver_node SET hostname = 'changed' WHERE id = 3\"")
    r = fab("restore", str(s), "--inventory", str(testdb.inventory))
    assert r.returncode == 0, r.stdout
    assert backed_up not in ("", "changed") and testdb.run("region1", hostname).stdout.strip() == backed_up


def test_a_vault_region_is_refused_and_never_dumps_an_unnamed_database(vault, tmp_path):
    def region_row(r) -> str:
        return next(ln for ln in r.stdout.splitlines() if ln.startswith("region1 "))
    r = fab("backup", "--inventory", str(vault.inventory), "--backup-dir", str(tmp_path / "a"))
    assert r.returncode == PARTIAL and "REFUSED" in region_row(r) and "Vault holds this MAAS's secrets" in r.stdout
    # regiond.conf names no database: `pg_dump ''` would have dumped the postgres database instead
    r = fab("backup", "--inventory", str(vault.inventory), "--backup-dir", str(tmp_path / "b"), "--allow-vault")
    assert r.returncode == PARTIAL and "--database-name" in region_row(r), r.stdout
    assert not list((tmp_path / "b").rglob("maasdb.sql*"))
    assert all(s.name.endswith(".partial") for s in sets(tmp_path / "a") + sets(tmp_path / "b"))
    r = fab("backup", "--inventory", str(vault.inventory), "--backup-dir", str(tmp_path / "c"), "--allow-vault",
            "--database-name", "maasdb")
    assert r.returncode == 0, r.stdout
    [s] = sets(tmp_path / "c")
    manifest = (s / "region1" / "manifest.json").read_text()
    assert '"database": "maasdb"' in manifest and "Vault in use" in manifest


@pytest.fixture(scope="module")
def old_region(tmp_path_factory):
    yield from small_lab(tmp_path_factory, "old", "deb-2.9")


def test_before_3_3_a_wrong_secret_leaves_regiond_active_but_never_ready(old_region, tmp_path):
    """As MAAS 2.7-3.2 do (security.py raises, start_up retries forever): only the region's API tells."""
    lab = old_region
    ready = ("python3 -c 'import urllib.request; urllib.request.urlopen("
             "\"http://localhost:5240/MAAS/api/2.0/version/\", timeout=3)'")
    assert lab.run("region1", ready, check=False).returncode == 0
    lab.run("region1", "cp -a /var/lib/maas/secret /tmp/secret && printf 0123456789abcdef > /var/lib/maas/secret")
    try:
        lab.run("region1", "systemctl stop maas-regiond && systemctl start maas-regiond && sleep 2")
        assert lab.run("region1", "systemctl is-active maas-regiond", check=False).stdout.strip() == "active"
        assert lab.run("region1", ready, check=False).returncode != 0
    finally:
        lab.run("region1", "cp -a /tmp/secret /var/lib/maas/secret && systemctl stop maas-regiond && "
                           "systemctl start maas-regiond && sleep 2")
    assert lab.run("region1", ready, check=False).returncode == 0
