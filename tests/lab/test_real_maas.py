"""Drills on MAAS as it ships (issue 23): each shape the lab now builds from MAAS's source, rehearsed with every
proof, then read on the hosts themselves.

- a PostgreSQL server shared with another application (its role and database stay the DR site's own);
- a deb rack with DHCP (/var/lib/maas/dhcp root:dhcpd, maas-dhcp.postinst) and snaps with the LXD client
  certificate ($SNAP_COMMON/certificates, maas_certificates.py @ 2.8-3.0);
- maas-test-db, whose socket the host has only in maas-test-db's own snap directory;
- a snap 3.4 region (the shared secret in maasserver_secret);
- Vault with a remote database (regiond.conf names no database: the operator gives the role and its password).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from maasops import compression
from maasops.lab import lab as lab_mod
from maasops.results import PARTIAL
from tests.labtools import fab, need_root, sets

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROLE_PASSWORD = "runuser -u postgres -- psql -XAt -c \"SELECT rolpassword FROM pg_authid WHERE rolname = 'maas'\""


def drill(tmp_path: Path, *args: str) -> tuple[lab_mod.Lab, lab_mod.Lab, Path]:
    """A drill that keeps both sites up: (source, dr, the set)."""
    need_root()
    r = fab("drill", "--lab-dir", str(tmp_path / "labs"), "--backup-dir", str(tmp_path / "b"), "--keep-lab", *args,
            timeout=600)
    sites = lab_mod.Lab.load(tmp_path / "labs" / "source"), lab_mod.Lab.load(tmp_path / "labs" / "dr")
    assert r.returncode == 0 and "drill PASSED" in r.stdout, r.stdout + r.stderr
    [set_dir] = sets(tmp_path / "b")
    data = json.loads(next(set_dir.glob("drill-*.json")).read_text())
    assert data["ok"] and all(data["checks"].values()) and len(data["checks"]) == 7
    return *sites, set_dir


@pytest.fixture
def labs_down(tmp_path):
    yield
    for site in ("source", "dr"):
        lab_mod.down(tmp_path / "labs" / site)


def run(site: lab_mod.Lab, host: str, command: str) -> str:
    return site.run(host, command).stdout


def test_a_shared_server_keeps_the_maas_role_and_a_dhcp_rack_its_leases(tmp_path, labs_down):
    src, dr, set_dir = drill(tmp_path, "--racks", "1", "--profile", "deb-3.5-shared,rack1=deb-2.9")
    manifest = json.loads((set_dir / "region1" / "manifest.json").read_text())
    assert manifest["dump"]["kind"] == "roles+pg_dump"  # was pg_dump alone: the maas role's password was lost
    with open(set_dir / "region1" / manifest["dump"]["file"], "rb") as raw:
        head = compression.reader(raw, manifest["dump"]["compression"]).read(1 << 16).decode()
    roles = head.split("-- PostgreSQL database cluster dump complete")[0]
    assert "CREATE ROLE maas;" in roles and lab_mod.OTHER_APP not in roles and "CREATE ROLE postgres" not in roles
    assert manifest["database"]["hba"] and manifest["database"]["listen_addresses"]
    # From the hosts: the DR server's maas role has the source's password, its other application is untouched.
    assert run(dr, "region1", ROLE_PASSWORD) == run(src, "region1", ROLE_PASSWORD)
    rows = f"runuser -u postgres -- psql -XAt -d {lab_mod.OTHER_APP} -c 'SELECT count(*) FROM invoices'"
    assert run(dr, "region1", rows).strip() == "100"
    leases = "stat -c '%n %U:%G %a' /var/lib/maas/dhcp /var/lib/maas/dhcp/dhcpd.leases /var/lib/maas/dhcp/dhcpd.leases~"
    assert run(dr, "rack1", leases) == run(src, "rack1", leases)
    assert "dhcpd.leases~ dhcpd:dhcpd 644" in run(dr, "rack1", leases)


def test_maas_test_db_and_a_snap_rack_with_the_lxd_certificate(tmp_path, labs_down):
    src, dr, set_dir = drill(tmp_path, "--racks", "1", "--profile", "snap-3.5-testdb,rack1=snap-3.4")
    assert json.loads((set_dir / "region1" / "manifest.json").read_text())["dump"]["how"] == "maas-test-db"
    for site in (src, dr):  # the path regiond.conf names is the snap's view only
        assert site.run("region1", "test -e /var/snap/maas/common/test-db-socket", check=False).returncode == 1
    certs = "cd /var/snap/maas/common/certificates && stat -c '%n %U %a' maas.key maas.crt && md5sum maas.key maas.crt"
    assert run(dr, "rack1", certs) == run(src, "rack1", certs)


def test_a_snap_3_4_region_keeps_its_secret_in_maasserver_secret(tmp_path, labs_down):
    src, dr, _ = drill(tmp_path, "--racks", "1", "--profile", "snap-3.4")
    secret = ("runuser -u postgres -- psql -XAt -d maasdb -c "
              "\"SELECT value ->> 'secret' FROM maasserver_secret WHERE path = 'global/rpc-shared'\"")
    want = run(src, "region1", "cat /var/snap/maas/common/maas/secret").strip()
    assert run(dr, "region1", secret).strip() == want == run(dr, "rack1", "cat /var/snap/maas/common/maas/secret")


def test_vault_with_a_remote_database_takes_the_operators_credentials(tmp_path, labs_down):
    src, dr, _ = drill(tmp_path, "--racks", "1", "--dedicated-db", "--profile", "deb-3.5-vault,rack1=deb-3.5")
    inv = str(src.inventory)
    r = fab("backup", "--inventory", inv, "--backup-dir", str(tmp_path / "c"), "--allow-vault",
            "--database-name", "maasdb")
    assert r.returncode == PARTIAL and "--database-user" in r.stdout, r.stdout  # the rack's part is made
    r = fab("plan", "backup", "--inventory", inv, "--allow-vault", "--database-name", "maasdb",
            "--database-user", "maas", "--database-password-file", str(src.database_password_file))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"(PGPASSWORD from {src.database_password_file})" in r.stdout
    assert src.database_password_file.read_text().strip() not in r.stdout + r.stderr
    # The password never reaches a command line or a file on the host: read the host's own process table.
    stop = "/tmp/maasops-watch-stop"
    watch = ("p=$(mktemp) && printf '%s\\n' \"$PW\" > \"$p\" && "  # printf is a builtin: no command line holds it
             f"for i in $(seq 3000); do [ -e {stop} ] && break; ps -eo args; sleep 0.05; done | grep -cFf \"$p\";"
             " rm -f \"$p\"")
    seen = subprocess.Popen([*src.enter("region1"), "sh", "-c", watch], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PW": src.database_password_file.read_text().strip()})
    r = fab("backup", "--inventory", inv, "--backup-dir", str(tmp_path / "d"), "--allow-vault", "--database-name",
            "maasdb", "--database-user", "maas", "--database-password-file", str(src.database_password_file))
    src.run("region1", f"touch {stop}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert seen.communicate(timeout=300)[0].strip() == "0"
