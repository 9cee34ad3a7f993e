"""Faults against the lab: host locks, a full laptop disk, and secrets that must never reach the output."""

from __future__ import annotations

import json
import subprocess

import pytest

from maasops import hostlock
from maasops.remote import RemoteError
from tests.labtools import fab, sets, unit_states

pytestmark = pytest.mark.lab


def test_a_second_run_is_refused_while_a_host_is_locked_and_a_dead_run_holds_nothing(lab, cxn, tmp_path):
    held = hostlock.acquire(cxn("rack1"), "test")
    try:
        r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
        assert r.returncode == 1
        row = next(line for line in r.stdout.splitlines() if line.startswith("rack1"))
        assert "REFUSED" in row and "another maasops run" in row
        assert next(line for line in r.stdout.splitlines() if line.startswith("region1")).split()[1] == "ok"
        with pytest.raises(RemoteError, match="another maasops run"):
            hostlock.acquire(cxn("rack1"), "test")
    finally:
        held.release()
    dying = cxn("rack1")
    hostlock.acquire(dying, "test")
    dying.close()  # the laptop's session ends without releasing: the host frees the lock itself
    hostlock.acquire(cxn("rack1"), "test").release()


def test_a_full_laptop_disk_fails_clearly_and_leaves_nothing_that_looks_complete(lab, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(full)], check=True)
    try:
        before = unit_states(lab)
        r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(full))
        assert r.returncode == 1
        assert "on this machine failed: No space left on device" in r.stdout
        assert "region1: dump database" in r.stdout or "region1: archive config trees" in r.stdout
        assert unit_states(lab) == before
        [s] = sets(full)
        assert s.name.endswith(".partial")
        assert not [p for p in s.rglob("*") if p.name.endswith(".partial") and p.is_file()]
    finally:
        subprocess.run(["umount", str(full)], check=True)


def test_secrets_and_passwords_never_reach_output_plans_or_reports(lab, tmp_path):
    secret = lab.run("region1", "cat /var/lib/maas/secret").stdout.strip()
    db_pass = lab.run("region1", "sed -n 's/^database_pass: *//p' /etc/maas/regiond.conf").stdout.strip()
    sudo_pass = lab.sudo_password_file.read_text().strip()
    inv = ["--inventory", str(lab.inventory)]
    outputs = [fab("plan", "backup", *inv), fab("backup", *inv, "--backup-dir", str(tmp_path))]
    [s] = sets(tmp_path)
    outputs += [fab("verify", str(s)), fab("plan", "restore", "--backup-set", str(s), *inv),
                fab("restore", str(s), *inv), fab("restore", str(s), *inv, "--rollback")]
    assert [o.returncode for o in outputs] == [0] * 6, [o.stdout + o.stderr for o in outputs]
    texts = [o.stdout + o.stderr for o in outputs]
    texts += [p.read_text() for p in s.rglob("*.json")]
    for value in (secret, db_pass, sudo_pass):
        assert len(value) >= 12
        assert not [t for t in texts if value in t]
    assert all(json.loads(p.read_text()) for p in s.rglob("*.json"))
