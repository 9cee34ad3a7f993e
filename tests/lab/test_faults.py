"""Faults against the lab: host locks, a full laptop disk, and secrets that must never reach the output."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time

import pyrage
import pytest

from maasops import channel, crypto, hostlock, stream
from maasops.channel import RemoteError
from maasops.command import Cmd
from maasops.results import PARTIAL
from tests.labtools import (
    FAB,
    ROOT,
    THIS_HOST,
    fab,
    journal_lines,
    remove_tool,
    sets,
    start_and_wait,
    table_row,
    unit_states,
    without_progress,
)

pytestmark = pytest.mark.lab


def test_a_second_run_is_refused_while_a_host_is_locked_and_a_dead_run_holds_nothing(lab, cxn, tmp_path):
    held = hostlock.acquire(cxn("rack1"), "test")
    try:
        r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
        assert r.returncode == PARTIAL
        row = table_row(r.stdout, "rack1")
        assert "REFUSED" in row and "another maasops run" in row
        assert table_row(r.stdout, "region1").split()[1] == "ok"
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
        assert r.returncode == PARTIAL
        assert "on this machine failed: No space left on device" in r.stdout, r.stdout + r.stderr
        failed = [ln for ln in r.stdout.splitlines() if " FAILED " in ln]
        assert failed and all(re.search(r": (dump database|archive config trees|write manifest)[^:]*: writing ", ln)
                              for ln in failed), r.stdout
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
    outputs += [fab("verify", str(s), *inv), fab("plan", "restore", "--backup-set", str(s), *inv),
                fab("restore", str(s), *inv), fab("restore", str(s), *inv, "--rollback")]
    assert [o.returncode for o in outputs] == [0] * 6, [o.stdout + o.stderr for o in outputs]
    texts = [o.stdout + o.stderr for o in outputs]
    texts += [p.read_text() for p in s.rglob("*.json")]
    for value in (secret, db_pass, sudo_pass):
        assert len(value) >= 12
        assert not [t for t in texts if value in t]
    assert all(json.loads(p.read_text()) for p in s.rglob("*.json"))


def test_a_unit_that_will_not_start_again_is_the_top_line_with_the_command(lab, tmp_path):
    lab.run("rack2", "touch /etc/maas-lab/fail-start/maas-http")
    try:
        r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
        assert r.returncode == PARTIAL
        first = without_progress(r.stdout)[0]
        assert first.startswith("!!! rack2: MAAS units were NOT started again. Run on rack2 by hand: sudo systemctl "
                                "start maas-rackd maas-dhcpd maas-http maas-proxy maas-syslog maas-agent"), r.stdout
        assert "SERVICES DOWN" in table_row(r.stdout, "rack2")
    finally:
        lab.run("rack2", "rm -f /etc/maas-lab/fail-start/maas-http && " + start_and_wait("maas-http"))


def test_database_down_fails_the_dump_clearly_and_stops_nothing(lab, tmp_path):
    before = unit_states(lab)
    journal = journal_lines(lab)
    lab.run("region1", "systemctl stop postgresql")
    try:
        r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    finally:
        lab.run("region1", "systemctl start postgresql")
    assert r.returncode == PARTIAL
    row = table_row(r.stdout, "region1")
    assert "FAILED" in row and "dump database" in row and "connection" in row.lower()
    assert unit_states(lab) == before
    assert journal_lines(lab)["region1"] == journal["region1"]  # PostgreSQL is checked first: nothing was stopped
    assert sets(tmp_path)[0].name.endswith(".partial")


def test_a_dump_failing_while_the_units_are_stopped_fails_the_host_and_starts_them_again(lab, tmp_path, tool_on):
    """The dump runs alongside the archive: its failure stops the host's run and its units come back."""
    before = unit_states(lab)
    tool_on("region1", "pg_dumpall", "#!/bin/sh\necho '-- partial'\nsleep 3\n"
                                     "echo 'pg_dumpall: error: connection lost' >&2\nexit 1\n")
    tool_on("region1", "tar", "#!/bin/sh\nsleep 8\nexec /usr/bin/tar \"$@\"\n")  # units stay stopped meanwhile
    journal = journal_lines(lab)
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == PARTIAL
    row = table_row(r.stdout, "region1")
    assert "FAILED" in row and "dump database (roles + pg_dump)" in row and "connection lost" in row
    assert unit_states(lab) == before
    new = lab.run("region1", "cat /var/log/maas-lab/units.log").stdout.splitlines()[journal["region1"]:]
    actions = [ln.split()[2] for ln in new]  # "<time> region1 stop maas-regiond"
    assert "stop" in actions and actions == sorted(actions, key=lambda a: a != "stop"), new
    [s] = sets(tmp_path)
    assert s.name.endswith(".partial") and not list(s.glob("region1/maasdb*"))


def test_a_cut_ssh_connection_fails_the_host_restarts_its_units_and_a_rerun_finishes(lab, tmp_path, tool_on):
    before = unit_states(lab)
    tool_on("rack1", "gzip", "#!/bin/sh\nsleep 30\nexec /usr/bin/gzip \"$@\"\n")
    proc = subprocess.Popen([FAB, "backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path),
                             "--compress", "gzip"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while "inactive" not in lab.run("rack1", "systemctl is-active snap.maas.supervisor", check=False).stdout:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    lab.run("rack1", f"pkill {THIS_HOST} -f 'sshd: [u]buntu'")  # the link drops: every session of maasops on rack1 dies
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == PARTIAL, out
    assert "FAILED" in table_row(out, "rack1")
    assert unit_states(lab) == before
    [partial] = sets(tmp_path)
    assert partial.name.endswith(".partial") and not list((partial / "rack1").glob("config.tar*"))
    remove_tool(lab, "rack1", "gzip")
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout
    assert fab("verify", str(sets(tmp_path)[-1]), "--inventory", str(lab.inventory)).returncode == 0


def test_a_remote_disk_too_small_is_refused_by_measuring_the_filesystem_that_is_written(lab, tmp_path):
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout
    [s] = sets(tmp_path)
    before = (unit_states(lab), journal_lines(lab))
    # /var/lib/maasops on its own (small) filesystem: `free /var` would have read the root's free space.
    lab.run("region1", "mkdir -p /var/lib/maasops && mount -t tmpfs -o size=256k tmpfs /var/lib/maasops")
    try:
        r = fab("restore", str(s), "--inventory", str(lab.inventory))
    finally:
        lab.run("region1", "umount /var/lib/maasops")
    assert r.returncode == 2 and "region1: not enough disk on /var/lib/maasops: 0 MiB free" in r.stdout, r.stdout
    assert (unit_states(lab), journal_lines(lab)) == before


def test_a_disk_that_fills_during_the_upload_fails_it_and_leaves_every_host_running(lab, tmp_path, tool_on):
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout
    [s] = sets(tmp_path)
    before = (unit_states(lab), journal_lines(lab))
    # The upload's writer fails the way a full disk makes it fail; every other tee works.
    tool_on("region1", "tee", "#!/bin/sh\ncase \"$*\" in *' /var/lib/maasops/'*)\n"
                              "  head -c 1000 >/dev/null; echo \"tee: $2: No space left on device\" >&2; "
                              "exit 1;;\nesac\nexec /usr/bin/tee \"$@\"\n")
    r = fab("restore", str(s), "--inventory", str(lab.inventory))
    left = lab.run("region1", "find /var/lib/maasops -name 'upload-*'").stdout
    assert r.returncode == 2  # refused before anything stopped
    row = table_row(r.stdout, "region1")
    assert "FAILED" in row and "upload" in row and "No space left" in row, r.stdout
    assert left == ""  # the partial upload was removed
    assert (unit_states(lab), journal_lines(lab)) == before  # failed before any unit was stopped


def test_quotes_and_spaces_in_a_sudo_password_neither_break_nor_inject(lab, cxn, tmp_path):
    weird = "a b'c\"d$(touch /tmp/pwned)`x`;e"
    hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=weird, text=True, capture_output=True,
                            check=True).stdout.strip()
    old = lab.run("rack2", "getent shadow ubuntu | cut -d: -f2").stdout.strip()
    lab.run("rack2", f"usermod -p {shlex.quote(hashed)} ubuntu")
    try:
        c = cxn("rack2")
        c.config.sudo.password = weird
        assert channel.run(c, Cmd("id -un"), "whoami", user="root").stdout.strip() == "root"
        got = stream.download(c, Cmd("cat /var/lib/maas/maas_id"), tmp_path / "id", "stream", sudo_user="root")
        assert got.size == 6
        assert lab.run("rack2", "ls /tmp/pwned", check=False).returncode != 0
    finally:
        lab.run("rack2", f"usermod -p {shlex.quote(old)} ubuntu")


def test_encrypted_sets_hold_no_plaintext_and_restore_only_with_the_identity(lab, tmp_path):
    key = pyrage.x25519.Identity.generate()
    (tmp_path / "key.txt").write_text(f"{key}\n")
    (tmp_path / "key.txt").chmod(0o600)  # an identity others can read is refused
    (tmp_path / "other.txt").write_text(f"{pyrage.x25519.Identity.generate()}\n")
    (tmp_path / "other.txt").chmod(0o600)
    inv = ["--inventory", str(lab.inventory)]
    r = fab("backup", *inv, "--backup-dir", str(tmp_path / "b"), "--compress", "none", "--encrypt-to",
            str(key.to_public()))
    assert r.returncode == 0, r.stdout + r.stderr
    [s] = sets(tmp_path / "b")
    secret = lab.run("region1", "cat /var/lib/maas/secret").stdout.strip().encode()
    data = [p for p in s.rglob("*") if p.is_file() and p.name != "manifest.json" and p.suffix == ".age"]
    assert len(data) == 4  # 3 archives + 1 dump
    for p in data:
        raw = p.read_bytes()
        assert raw.startswith(crypto.AGE_MAGIC)
        assert secret not in raw and b"regiond.conf" not in raw and b"CREATE TABLE" not in raw
    r = fab("verify", str(s), *inv)
    assert r.returncode == 0 and "checksums only" in r.stdout
    assert fab("verify", str(s), *inv, "--decrypt-key", str(tmp_path / "key.txt")).returncode == 0
    r = fab("verify", str(s), *inv, "--decrypt-key", str(tmp_path / "other.txt"))
    assert r.returncode == 1 and "does not decrypt" in r.stdout
    journal = journal_lines(lab)
    r = fab("restore", str(s), *inv)
    assert r.returncode == 2 and "--decrypt-key" in r.stdout
    r = fab("restore", str(s), *inv, "--decrypt-key", str(tmp_path / "other.txt"))
    assert r.returncode == 2 and "does not decrypt" in r.stdout
    assert journal_lines(lab) == journal
    r = fab("restore", str(s), *inv, "--decrypt-key", str(tmp_path / "key.txt"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert len({lab.run(h, f"sha256sum {p}").stdout.split()[0] for h, p in (
        ("region1", "/var/lib/maas/secret"), ("rack1", "/var/snap/maas/common/maas/secret"),
        ("rack2", "/var/lib/maas/secret"))}) == 1
