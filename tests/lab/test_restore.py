"""`fab restore` / `fab verify` against the lab: every profile, 2 regions + 4 racks, faults, rollback."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time

import pytest

from maasops import errors, fingerprints, hostpaths, probe, proof
from maasops import manifest as mf
from tests.labtools import FAB, ROOT, THIS_HOST, backed_up, fab, journal_lines, mixed_lab, sets, targets, unit_states

pytestmark = pytest.mark.lab
FINGERPRINT = f"runuser -u postgres -- psql -XAt -d maasdb -c {shlex.quote(fingerprints.FINGERPRINT_SQL)}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The lab with every profile (labtools.MIXED_PROFILE)."""
    yield from mixed_lab(tmp_path_factory, "site")


@pytest.fixture(scope="module")
def backup_set(site, tmp_path_factory):
    # gzip (the drill restores --compress auto's zstd sets).
    return backed_up(site.inventory, tmp_path_factory.mktemp("sets"), "--compress", "gzip")


def fingerprint(the_lab) -> dict[str, str]:
    return fingerprints.parse_fingerprint(the_lab.run("region1", FINGERPRINT).stdout)


def dbupgrade_log(the_lab) -> dict[str, int]:
    return {h: int(the_lab.run(h, "cat /var/log/maas-lab/dbupgrade.log 2>/dev/null | wc -l || true").stdout)
            for h in ("region1", "region2")}


def differences(the_lab, set_dir) -> dict[str, list[str]]:
    """What differs between every host and the set (a rack's secret may differ only if it equals the region's)."""
    tg = targets(the_lab)
    out = {}
    for name, t in tg.items():
        m = mf.read_set(set_dir).hosts[name]
        f = probe.probe(t.connection)
        allowed = {f.on_host(f.layout.secret)} if "region" not in m.roles else set()
        p = proof.prove_host(t.connection, m, f, allowed)
        out[name] = p.differences + [f"unit {u} down" for u in p.units_down]
        out[name + ":secret"] = p.secret_sha256
        t.connection.close()
    return out


def secrets_and_diffs(the_lab, set_dir) -> tuple[set[str], dict[str, list[str]]]:
    d = differences(the_lab, set_dir)
    return {v for k, v in d.items() if k.endswith(":secret")}, {k: v for k, v in d.items() if ":" not in k}


def listing(the_lab) -> dict[str, str]:
    """Every MAAS path on every host with type, mode, owner and checksum: to prove a host is 'as before'."""
    cmd = ("{ find /etc/maas* /var/lib/maas* /var/snap/maas /etc/dbconfig-common -printf '%p %y %m %u %g\\n'; "
           "find /etc/maas* /var/lib/maas* /var/snap/maas -type f -exec md5sum {} +; } 2>/dev/null "
           "| grep -v /var/lib/maasops | sort; true")
    return {h.name: the_lab.run(h.name, cmd).stdout for h in the_lab.hosts if h.profile}


def test_restore_onto_the_same_hosts_undoes_every_change(site, backup_set):
    db_before = fingerprint(site)
    site.run("rack2", "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /var/snap/maas/common/maas/secret")
    site.run("rack1", "chmod 0600 /etc/maas/rackd.conf && echo extra >> /var/lib/maas/dhcpd.conf")
    # A deb rack's DHCP leases (root:dhcpd, and dhcpd's own copy) and a snap's LXD client certificate (issue 23)
    dhcp = "stat -c '%n %U:%G %a' /var/lib/maas/dhcp /var/lib/maas/dhcp/dhcpd.leases /var/lib/maas/dhcp/dhcpd.leases~"
    dhcp_before = site.run("rack1", dhcp).stdout
    assert "/var/lib/maas/dhcp root:dhcpd 775" in dhcp_before and "dhcpd.leases~ dhcpd:dhcpd 644" in dhcp_before
    site.run("rack1", "rm /var/lib/maas/dhcp/dhcpd.leases~ && echo lost > /var/lib/maas/dhcp/dhcpd.leases")
    lxd_key = "/var/snap/maas/common/certificates/maas.key"
    key_before = site.run("rack3", f"md5sum {lxd_key}").stdout
    site.run("rack3", f"rm {lxd_key}")
    site.run("region1", "echo stray > /etc/maas/stray.conf && runuser -u postgres -- psql -XAtq -d maasdb "
                        "-c \"UPDATE maasserver_node SET hostname = 'changed' WHERE id = 7\"")
    assert fingerprint(site) != db_before
    runs_before = dbupgrade_log(site)
    r = fab("restore", str(backup_set), "--inventory", str(site.inventory))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dbupgrade on region1" in r.stdout
    assert fingerprint(site) == db_before
    assert site.run("rack1", dhcp).stdout == dhcp_before  # read from the host: its owners, mode, names
    assert site.run("rack3", f"md5sum {lxd_key}").stdout == key_before
    secret_digests, diffs = secrets_and_diffs(site, backup_set)
    assert diffs == {h: [] for h in diffs}
    assert len(secret_digests) == 1  # the regenerated rack secret is the region's again
    assert dbupgrade_log(site) == {"region1": runs_before["region1"] + 1, "region2": runs_before["region2"]}
    # Run twice: dbupgrade again exactly once, on the same region, and never clobbering the first aside copy.
    time.sleep(1)
    r = fab("restore", str(backup_set), "--inventory", str(site.inventory))
    assert r.returncode == 0, r.stdout + r.stderr
    assert dbupgrade_log(site) == {"region1": runs_before["region1"] + 2, "region2": runs_before["region2"]}
    asides = site.run("rack1", "ls -d /etc/maas.maasops-aside-*").stdout.split()
    assert len(asides) == 2
    reports = sorted(backup_set.glob("restore-*.json"))
    assert [json.loads(p.read_text())["dbupgrade_runs"] for p in reports[-2:]] == [1, 1]
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in reports)


def test_the_proof_fails_loudly_on_a_changed_file_mode_or_row(site, backup_set):
    db_before = fingerprint(site)
    site.run("rack1", "chmod 0644 /var/lib/maas/secret")
    site.run("region2", "echo '# edited' >> /var/snap/maas/current/regiond.conf")
    site.run("region1", "runuser -u postgres -- psql -XAtq -d maasdb -c \"DELETE FROM maasserver_event WHERE id = 3\"")
    try:
        _, diffs = secrets_and_diffs(site, backup_set)
        assert diffs["rack1"] == ["/var/lib/maas/secret: mode 0644, was 0640"]
        assert [d for d in diffs["region2"] if "regiond.conf: content differs" in d]
        assert fingerprint(site) != db_before
    finally:
        r = fab("restore", str(backup_set), "--inventory", str(site.inventory))
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("damage", ["truncate dump", "flip archive byte", "edit manifest", "partial set"])
def test_damaged_sets_are_caught_before_anything_stops(site, backup_set, tmp_path, damage):
    bad = tmp_path / backup_set.name
    shutil.copytree(backup_set, bad)
    if damage == "truncate dump":
        [dump] = (bad / "region1").glob("maasdb.sql.*")
        os.truncate(dump, dump.stat().st_size // 2)
    elif damage == "flip archive byte":
        with open(next((bad / "rack2").glob("config.tar.*")), "r+b") as f:
            f.seek(200)
            b = f.read(1)
            f.seek(200)
            f.write(bytes([b[0] ^ 0xFF]))
    elif damage == "edit manifest":
        m = bad / "rack3" / "manifest.json"
        m.write_text(m.read_text().replace('"0640"', '"0644"'))
    else:
        bad = bad.rename(bad.with_name(bad.name + ".partial"))
    r = fab("verify", str(bad), "--inventory", str(site.inventory))
    assert r.returncode == 1 and "DAMAGED OR INCOMPLETE" in r.stdout
    journal = journal_lines(site)
    r = fab("restore", str(bad), "--inventory", str(site.inventory))
    if damage == "flip archive byte":
        # Same size, so only reading every byte finds it: the restore does that as it uploads, on the
        # host, against the sha256 the backup recorded; before anything stops. A dry run reads it up front.
        # Exit 2: refused before anything stopped, as every refusal is (issue 14: one code for one meaning).
        assert r.returncode == 2 and "rack2: upload config archive: " + errors.DAMAGED in r.stdout
        assert "Nothing was stopped or changed on any host" in r.stdout and "NOT CHANGED" in r.stdout
        left = [site.run(h, f"ls {hostpaths.RUN_ROOT}/*/upload-* 2>/dev/null || true").stdout
                for h in targets(site)]
        assert not any(left), left
        dry = fab("restore", str(bad), "--inventory", str(site.inventory), "--dry-run")
        assert dry.returncode == 2 and "does not verify" in dry.stdout
    else:
        assert r.returncode == 2 and "restore refused, nothing was touched" in r.stdout
    assert journal_lines(site) == journal


def test_version_or_install_mismatch_is_refused_and_allow_upgrade_works(site, tmp_path):
    # A rack alone holds no database: the set says so, and each command is told (--database-elsewhere).
    r = fab("-S", str(site.ssh_config), "-H", "rack3", "backup", "--backup-dir", str(tmp_path), "--deployment", "r3",
            "--sign-key", str(site.signing_key),
            "--database-elsewhere")
    assert r.returncode == 0, r.stdout + r.stderr
    [rack3_set] = sets(tmp_path, "r3")
    journal = journal_lines(site)
    inv = ("--inventory", str(site.inventory), "--database-elsewhere")
    r = fab("restore", str(rack3_set), *inv, "--map", "rack3=rack4")
    assert r.returncode == 2 and "--allow-upgrade" in r.stdout, r.stdout
    r = fab("restore", str(rack3_set), *inv, "--map", "rack3=rack1", "--allow-upgrade")
    assert r.returncode == 2 and "install type differs" in r.stdout
    assert journal_lines(site) == journal
    before = listing(site)["rack4"]
    r = fab("restore", str(rack3_set), *inv, "--map", "rack3=rack4", "--allow-upgrade")
    assert r.returncode == 0, r.stdout + r.stderr
    t = targets(site)["rack4"]
    f = probe.probe(t.connection)
    m = mf.read_set(rack3_set).hosts["rack3"]
    assert proof.prove_host(t.connection, m, f, set()).differences == []  # 3.4's revision dir became 3.5's
    assert unit_states(site)["rack4"].split() == ["active"]
    r = fab("restore", str(rack3_set), *inv, "--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    after = listing(site)["rack4"]
    assert [ln for ln in after.splitlines() if "maasops-" not in ln] == \
        [ln for ln in before.splitlines() if "maasops-" not in ln]


@pytest.fixture
def tar_on_rack2(site):
    """Put a tar on rack2's PATH (under sudo) that we control; remove it afterwards."""
    def install(script: str) -> None:
        site.run("rack2", "cat > /usr/local/bin/tar && chmod 755 /usr/local/bin/tar", input=script)
    yield install
    site.run("rack2", f"rm -f /usr/local/bin/tar; pkill {THIS_HOST} -f '/usr/local/bin/[t]ar'", check=False)


def mutate(site) -> None:
    site.run("region1", "runuser -u postgres -- psql -XAtq -d maasdb "
                        "-c \"UPDATE maasserver_config SET value = '\\\"other\\\"' WHERE name = 'maas_name'\"")
    site.run("rack4", "echo changed >> /var/snap/maas/common/maas/dhcpd.conf")


def test_a_failed_restore_puts_every_host_back_as_it_was(site, backup_set, tar_on_rack2):
    mutate(site)
    before = (fingerprint(site), listing(site), unit_states(site))
    tar_on_rack2("#!/bin/sh\ncase \"$*\" in *-x*) echo 'tar: /etc/maas: No space left on device' >&2; exit 1;; esac\n"
                 "exec /usr/bin/tar \"$@\"\n")
    r = fab("restore", str(backup_set), "--inventory", str(site.inventory))
    assert r.returncode == 1
    assert "FAILED" in r.stdout and "No space left" in r.stdout and "ROLLED BACK" in r.stdout, r.stdout
    after = (fingerprint(site), listing(site), unit_states(site))
    assert after[0] == before[0]  # the saved database was loaded again
    assert after[1] == before[1]  # every tree is back; no aside copy or upload left behind
    assert after[2] == before[2]


def test_a_killed_restore_can_be_rolled_back(site, backup_set, tar_on_rack2):
    mutate(site)
    before = (fingerprint(site), listing(site), unit_states(site))
    tar_on_rack2("#!/bin/sh\ncase \"$*\" in *-x*) sleep 120; exit 1;; esac\nexec /usr/bin/tar \"$@\"\n")
    last_run = "readlink /var/lib/maasops/restore/latest; true"
    previous = site.run("rack2", last_run).stdout
    proc = subprocess.Popen([FAB, "restore", str(backup_set), "--inventory", str(site.inventory)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while site.run("rack2", last_run).stdout == previous or \
            "aside " not in site.run("rack2", "cat /var/lib/maasops/restore/latest/state 2>/dev/null; true").stdout:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the laptop dies: no undo runs
    proc.communicate(timeout=30)
    site.run("rack2", f"rm -f /usr/local/bin/tar; pkill {THIS_HOST} -f '/usr/local/bin/[t]ar'", check=False)
    assert unit_states(site) != before[2]  # MAAS is down, mid-restore
    r = fab("restore", str(backup_set), "--inventory", str(site.inventory), "--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    after = (fingerprint(site), listing(site), unit_states(site))
    assert after[0] == before[0]
    kept = {h: {ln for ln in t.splitlines() if "maasops-" not in ln} for h, t in after[1].items()}
    was = {h: {ln for ln in t.splitlines() if "maasops-" not in ln} for h, t in before[1].items()}
    assert kept == was, {h: (sorted(was[h] - kept[h])[:5], sorted(kept[h] - was[h])[:5])
                         for h in was if kept[h] != was[h]}
    assert after[2] == before[2]
    r = fab("restore", str(backup_set), "--inventory", str(site.inventory), "--rollback")
    assert r.returncode == 2 and "already rolled back" in r.stdout
