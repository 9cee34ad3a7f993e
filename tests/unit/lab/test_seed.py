"""The lab's database seed: MAAS-like rows sized to the dump's raw size, boot images as large objects up to 3.4."""

from __future__ import annotations

import subprocess
from importlib import resources

import pytest

from maasops.lab import seed
from tests.conftest import pg_tool

CONTROLLERS = [("region1", 4), ("rack1", 2)]


def _dumped(db_mb: int, images_in_db: bool) -> int:
    """What the generator counts as the dump's bytes."""
    f = []
    original = seed.Fleet.__init__

    def keep(self, *args):
        original(self, *args)
        f.append(self)
    seed.Fleet.__init__ = keep
    try:
        text = "".join(seed.statements(db_mb, images_in_db, CONTROLLERS))
    finally:
        seed.Fleet.__init__ = original
    return f[0].t.dumped, text


def test_the_same_size_gives_the_same_content_and_the_size_asked_for():
    for images in (False, True):
        dumped, text = _dumped(3, images)
        assert text == _dumped(3, images)[1]
        assert 3 * seed.MIB <= dumped <= 3.05 * seed.MIB
        assert ("lo_put(" in text) is images and ("maasserver_bootresourcefilesync" in text) is not images


def test_machines_events_scripts_dns_and_dhcp_are_all_there_even_when_tiny():
    _, text = _dumped(1, False)
    for table in ("maasserver_node", "maasserver_event", "metadataserver_scriptresult", "maasserver_dnsresource",
                  "maasserver_dhcpsnippet", "maasserver_staticipaddress", "maasserver_bmc"):
        assert f"COPY {table} (" in text, table
    assert text.count("\n", text.index("COPY maasserver_node (")) >= seed.MIN_MACHINES


@pytest.mark.lab
def test_a_seeded_database_dumps_to_about_its_size_with_images_as_large_objects(scratch_pg):
    psql = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(scratch_pg)]
    subprocess.run([*psql, "-c", "CREATE DATABASE maasdb", "postgres"], check=True, capture_output=True, cwd="/")
    schema = (resources.files("maasops.lab") / "sql" / "schema.sql").read_text()
    body = schema + "".join(seed.statements(4, True, CONTROLLERS))
    subprocess.run([*psql, "-d", "maasdb"], input=body.encode(), check=True, capture_output=True, cwd="/")
    dump = subprocess.run(["runuser", "-u", "postgres", "--", pg_tool("pg_dump"), "-h", str(scratch_pg), "--clean",
                           "--create", "--if-exists", "maasdb"], check=True, capture_output=True, cwd="/").stdout
    assert 0.95 * 4 * seed.MIB <= len(dump) <= 1.1 * 4 * seed.MIB
    same = subprocess.run([*psql, "-At", "-d", "maasdb", "-c",
                           "SELECT count(*), bool_and(l.sha256 = encode(sha256(lo_get(l.content)), 'hex') AND "
                           "f.sha256 = l.sha256) FROM maasserver_largefile l JOIN maasserver_bootresourcefile f "
                           "ON f.largefile_id = l.id"], check=True, capture_output=True, text=True, cwd="/").stdout
    assert same.strip() == f"{len(seed.RELEASES) * len(seed.IMAGE_FILES)}|t"
