"""Real hosts are messier than a tidy lab (issue 11): each test reproduces what went wrong on one.

Against the session lab (region1 deb 3.5 with the database, rack1 snap 3.4, rack2 deb 3.5 whose
/var/lib/maas is a mount point and whose sudo asks for a password; region1's and rack1's rackd.conf
lack a final newline).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from maasops import channel, connect, fleet, hostkeys, hostpaths, probe, stream
from maasops.command import Cmd
from maasops.errors import RemoteError
from maasops.lab import hostfs
from maasops.parts import database
from maasops.results import PARTIAL
from tests.labtools import FAB, ROOT, THIS_HOST, fab, journal_lines, sets, unit_states

pytestmark = pytest.mark.lab


def wait_for(predicate, seconds: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"waited {seconds}s for {what}"
        time.sleep(0.2)


def running(lab, host: str, pattern: str) -> str:
    """Processes whose command line matches (the [x] keeps pgrep's own shell from matching itself)."""
    return lab.run(host, f"pgrep {THIS_HOST} -af '[{pattern[0]}]{pattern[1:]}'; true").stdout.strip()


def test_a_rackd_conf_without_its_final_newline_is_read_right_and_the_region_still_dumps(lab, cxn, tmp_path):
    assert not lab.run("rack1", "tail -c 1 /var/snap/maas/current/rackd.conf").stdout.endswith("\n")
    f = probe.probe(cxn("rack1"))
    assert f.roles == ("rack",) and f.maas_url and f.maas_url.endswith("/MAAS")  # not ".../MAASsnap_mode=..."
    assert set(f.unit_states) >= {"snap.maas.supervisor"}
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout
    [s] = sets(tmp_path)
    assert list((s / "region1").glob("maasdb.sql*"))


def test_a_probe_that_cannot_tell_the_roles_fails_the_host_and_never_guesses(lab, tmp_path):
    lab.run("rack1", "cp -a /var/snap/maas/common/snap_mode /tmp/snap_mode && printf bogus > "
                     "/var/snap/maas/common/snap_mode")
    try:
        r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    finally:
        lab.run("rack1", "cp -a /tmp/snap_mode /var/snap/maas/common/snap_mode")
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("rack1"))
    assert r.returncode == PARTIAL and "UNREACHABLE" in row and "cannot tell this host's roles" in row, r.stdout
    assert sets(tmp_path)[0].name.endswith(".partial")  # a set without a host is never complete


def test_killing_the_laptop_mid_backup_ends_the_remote_work_and_the_host_starts_its_units(lab, tmp_path, tool_on):
    before = unit_states(lab)
    tool_on("rack2", "gzip", "#!/bin/sh\ncase \"$*\" in *-d*) exec /usr/bin/gzip \"$@\";; esac\n"
                             "sleep 137\nexec /usr/bin/gzip \"$@\"\n")
    proc = subprocess.Popen([FAB, "backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path),
                             "--compress", "gzip"],  # gzip: the wrapper's (--compress auto would take zstd)
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: running(lab, "rack2", "sleep 137"), 60, "the archive to start (after the units stopped)")
    assert "inactive" in lab.run("rack2", "systemctl is-active maas-rackd", check=False).stdout
    os.killpg(proc.pid, signal.SIGKILL)  # the laptop dies: nothing of maasops's runs on the laptop any more
    proc.wait()
    wait_for(lambda: not running(lab, "rack2", "sleep 137"), 20, "the orphaned archive to end")
    wait_for(lambda: unit_states(lab) == before, 30, "the host's guard to start the units again")
    assert "started them again" in lab.run("rack2", f"cat {hostpaths.GUARD_LOG}").stdout
    lab.run("rack2", "rm -f /usr/local/bin/gzip")
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path / "again"))
    assert r.returncode == 0, r.stdout  # the host's lock is free again


def test_killing_the_laptop_mid_upload_ends_the_remote_writer_and_stops_nothing(lab, tmp_path, tool_on):
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout
    [s] = sets(tmp_path)
    before = (unit_states(lab), journal_lines(lab))
    # A slow writer: a disk that takes 16 KiB every 0.0213 s. It ends when its input ends, as tee does
    # (after what was on its way: a command fed through stdin ends with its input, it has no watcher).
    slow = ("import sys, time\nout = open(sys.argv[1], \"wb\")\nwhile b := sys.stdin.buffer.read1(16384):\n"
            "    out.write(b)\n    sys.stdout.buffer.write(b)\n    time.sleep(0.0213)\n")
    tool_on("region1", "tee", "#!/bin/sh\ncase \"$*\" in *' /var/lib/maasops/'*)\n"
                              f"  exec python3 -c '{slow}' \"$2\";;\nesac\nexec /usr/bin/tee \"$@\"\n")
    proc = subprocess.Popen([FAB, "restore", str(s), "--inventory", str(lab.inventory)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: running(lab, "region1", "0.0213"), 60, "the upload to start")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not running(lab, "region1", "0.0213"), 90, "the orphaned upload to end")
    assert (unit_states(lab), journal_lines(lab)) == before  # nothing was stopped: nothing is down


def test_the_secret_never_shows_in_the_process_list_while_a_rack_is_re_pointed(lab, tmp_path):
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout
    [s] = sets(tmp_path)
    secret = lab.run("region1", "cat /var/lib/maas/secret").stdout.strip()
    watch = "while :; do ps -eo args >> /tmp/ps.log; sleep 0.02; done"
    for h in ("rack1", "rack2"):
        lab.run(h, f"rm -f /tmp/ps.log; setsid -f sh -c {watch!r} </dev/null >/dev/null 2>&1")
    try:
        r = fab("restore", str(s), "--inventory", str(lab.inventory), "--maas-url", "http://10.0.0.1:5240/MAAS")
        assert r.returncode == 0, r.stdout
    finally:
        stop = f"pkill {THIS_HOST} -f '[p]s -eo args'; cat /tmp/ps.log"
        logs = {h: lab.run(h, stop).stdout for h in ("rack1", "rack2")}
    assert all(len(log.splitlines()) > 50 for log in logs.values())  # the watcher saw the restore happen
    assert not [h for h, log in logs.items() if secret in log]
    assert "- http://10.0.0.1:5240/MAAS" in lab.run("rack2", "cat /etc/maas/rackd.conf").stdout
    assert fab("restore", str(s), "--inventory", str(lab.inventory)).returncode == 0  # back as it was


def test_a_sudo_password_is_never_sent_to_a_host_that_does_not_ask_for_one(lab, cxn, tmp_path):
    c = cxn("rack1")  # NOPASSWD
    c.config.sudo.password = "not-asked-for-1234"
    data = b"exactly these bytes\n"
    src = tmp_path / "data"
    src.write_bytes(data)
    with open(src, "rb") as f:
        stream.upload(c, Cmd("cat > /tmp/upload-check"), f, "upload", sudo_user="root")
    assert lab.run("rack1", "cat /tmp/upload-check").stdout.encode() == data
    assert channel.run(c, Cmd("id -un"), "whoami", user="root").stdout.strip() == "root"


def _line(lab, host: str) -> str:
    return next(ln for ln in lab.known_hosts.read_text().splitlines() if host in ln.split()[0].split(","))


def _config(lab, tmp_path: Path, known: str) -> Path:
    cfg = tmp_path / "ssh_config"
    cfg.write_text(lab.ssh_config.read_text().replace(f"UserKnownHostsFile {lab.known_hosts}",
                                                      f"UserKnownHostsFile {known}"))
    return cfg


def test_a_changed_bastion_key_is_called_a_possible_attack_never_accept(lab, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "fake")], check=True)
    fake_key = " ".join((tmp_path / "fake.pub").read_text().split()[:2])
    names = _line(lab, "bastion").split()[0]
    (tmp_path / "known").write_text(f"{names} {fake_key}\n" + _line(lab, "region1") + "\n")
    cfg = connect.with_ssh_config(connect.fabric_config(), _config(lab, tmp_path, str(tmp_path / "known")))
    with pytest.raises(RemoteError) as err:
        channel.run(connect.connection("region1", cfg), Cmd("true"), "connect")
    said = str(err.value)
    assert "jump host bastion CHANGED" in said and "POSSIBLE ATTACK" in said and "--accept-new" not in said


def test_accept_new_records_where_openssh_would_private_and_never_takes_a_different_key(lab, tmp_path):
    first, second = tmp_path / "ssh" / "new_known", tmp_path / "known"
    second.write_text(_line(lab, "bastion") + "\n")
    cfg_path = _config(lab, tmp_path, f"{first} {second}")
    old = os.umask(0o022)
    try:
        cfg = connect.with_ssh_config(connect.fabric_config(), cfg_path)
        c = connect.connection("region1", cfg, accept_new_host_keys=True)
        channel.run(c, Cmd("true"), "connect")
        fleet.close(c)
    finally:
        os.umask(old)
    recorded = first.read_text()
    assert "ssh-ed25519" in recorded and first.stat().st_mode & 0o777 == 0o600
    # The host's key changes (another one is recorded for it): accept-new refuses, as OpenSSH does.
    fake = tmp_path / "fake"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(fake)], check=True)
    name = recorded.split()[0]
    first.write_text(f"{name} {' '.join(fake.with_suffix('.pub').read_text().split()[:2])}\n")
    cfg = connect.with_ssh_config(connect.fabric_config(), cfg_path)
    with pytest.raises(RemoteError, match="CHANGED"):
        channel.run(connect.connection("region1", cfg, accept_new_host_keys=True), Cmd("true"), "connect")


def test_cert_authority_and_revoked_lines_are_understood(lab, tmp_path):
    region = _line(lab, "region1")
    key = " ".join(region.split()[1:3])
    known = tmp_path / "known"
    known.write_text(f"@cert-authority *.example.com {key}\n{_line(lab, 'bastion')}\n{region}\n")
    cfg = connect.with_ssh_config(connect.fabric_config(), _config(lab, tmp_path, str(known)))
    assert channel.run(connect.connection("region1", cfg), Cmd("true"), "connect").exited == 0
    known.write_text(known.read_text() + f"@revoked * {key}\n")
    cfg = connect.with_ssh_config(connect.fabric_config(), _config(lab, tmp_path, str(known)))
    with pytest.raises(RemoteError, match="REVOKED"):
        channel.run(connect.connection("region1", cfg), Cmd("true"), "connect")
    assert hostkeys.KnownHosts([known]).revoked


def test_a_host_that_never_stops_streaming_is_stopped_at_the_probes_bound(lab, tmp_path, tool_on):
    before = unit_states(lab)
    # One member that never ends: zeros, which compress to a trickle (zeros after an archive's end are
    # refused sooner, at 16 MiB, by the parser: tests/unit/test_tarstream.py).
    endless = ("import sys, tarfile\nt = tarfile.TarInfo(\"etc/maas/endless\")\nt.size = 1 << 40\n"
               "out = sys.stdout.buffer\nout.write(t.tobuf(tarfile.GNU_FORMAT))\nzeros = bytes(1 << 20)\n"
               "while True:\n    out.write(zeros)\n")
    tool_on("rack1", "tar", f"#!/bin/sh\nexec python3 -c '{endless}'\n")
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("rack1 "))
    assert r.returncode == PARTIAL and "the most the probe's sizes allow" in row, r.stdout
    assert unit_states(lab) == before


def test_a_host_that_goes_quiet_is_stopped_after_the_idle_timeout(lab, tmp_path, tool_on):
    before = unit_states(lab)
    tool_on("rack1", "tar", "#!/bin/sh\nsleep 600\n")
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path), "--idle-timeout", "3")
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("rack1 "))
    assert r.returncode == PARTIAL and "sent nothing for 3s" in row, r.stdout
    assert unit_states(lab) == before


def test_a_tree_that_is_a_mount_point_is_restored_and_rolled_back_in_place(lab, cxn, tmp_path):
    assert "/var/lib/maas" in probe.probe(cxn("rack2")).mountpoints
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout
    [s] = sets(tmp_path)
    lab.run("rack2", "echo changed >> /var/lib/maas/dhcpd.conf")
    r = fab("restore", str(s), "--inventory", str(lab.inventory))
    assert r.returncode == 0, r.stdout
    assert "changed" not in lab.run("rack2", "cat /var/lib/maas/dhcpd.conf").stdout
    assert lab.run("rack2", "mountpoint -q /var/lib/maas", check=False).returncode == 0
    r = fab("restore", str(s), "--inventory", str(lab.inventory), "--rollback")
    assert r.returncode == 0, r.stdout
    assert "changed" in lab.run("rack2", "cat /var/lib/maas/dhcpd.conf").stdout
    lab.run("rack2", "sed -i '/^changed$/d' /var/lib/maas/dhcpd.conf")


def test_leftovers_of_older_restores_are_pruned_and_cleanup_removes_the_rest(lab, tmp_path):
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    [s] = sets(tmp_path)
    for _ in range(3):
        time.sleep(1)  # run ids are per second
        r = fab("restore", str(s), "--inventory", str(lab.inventory), "--keep", "2")
        assert r.returncode == 0, r.stdout
    assert "removed /etc/maas.maasops-aside-" in r.stdout and "(older restore)" in r.stdout
    asides = lab.run("rack1", "ls -d /var/snap/maas/common/maas.maasops-aside-*").stdout.split()
    inside = lab.run("rack2", "ls -d /var/lib/maas/.maasops-aside-*").stdout.split()
    kept = lab.run("region1", "runuser -u postgres -- psql -XAtc \"SELECT datname FROM pg_database "
                              "WHERE datname LIKE 'maasops_kept_%'\"").stdout.split()
    assert (len(asides), len(inside), len(kept)) == (2, 2, 2)
    # what a backup killed with its host leaves: a directory-format dump, older than the stale age
    stale, fresh = f"{hostpaths.DUMP_ROOT}/run.stale", f"{hostpaths.DUMP_ROOT}/run.fresh"
    lab.run("region1", f"mkdir -p {stale}/db {fresh} && touch -d '-{database.STALE_MINUTES + 1} minutes' {stale}")
    listed = fab("cleanup", "--inventory", str(lab.inventory), "--dry-run")
    assert listed.returncode == 0 and "maasops_kept_" in listed.stdout and ".maasops-aside-" in listed.stdout
    assert stale in listed.stdout and fresh not in listed.stdout, listed.stdout
    r = fab("cleanup", "--inventory", str(lab.inventory), "--keep", "1")
    assert r.returncode == 0 and "removed" in r.stdout and f"removed {stale}" in r.stdout, r.stdout
    assert lab.run("region1", f"ls {hostpaths.DUMP_ROOT}").stdout.split() == ["run.fresh"]  # a running backup's
    lab.run("region1", f"rm -rf {fresh}")
    assert len(lab.run("rack1", "ls -d /var/snap/maas/common/maas.maasops-aside-*").stdout.split()) == 1


def test_a_machine_that_already_has_an_ubuntu_user_gets_the_labs_own(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    for f in ("passwd", "group", "shadow", "gshadow"):
        (etc / f).write_text(Path("/etc", f).read_text() + "ubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n"
                             if f == "passwd" else Path("/etc", f).read_text() + "ubuntu:x:1000:\n")
    ids = hostfs.Ids(user=4242, maas=990, dhcpd=989)
    fs = hostfs.HostFS(tmp_path / "fs", ids)
    hostfs.write_base(fs, "bastion", "10.0.0.2", {}, "ssh-ed25519 AAAA test\n", None, etc=etc)
    entries = [ln for ln in fs.path("/etc/passwd").read_text().splitlines() if ln.startswith("ubuntu:")]
    assert entries == [f"ubuntu:x:4242:4242::/home/{hostfs.LOGIN_USER}:/bin/bash"]


def test_a_backup_refused_before_it_started_leaves_no_directory(lab, tmp_path):
    (tmp_path / "known").write_text("")
    cfg = _config(lab, tmp_path, str(tmp_path / "known"))
    inv = tmp_path / "inventory.yaml"
    inv.write_text(lab.inventory.read_text().replace("ssh_config: ssh_config", f"ssh_config: {cfg}")
                   .replace("signing_key: id_ed25519", f"signing_key: {lab.signing_key}")
                   .replace("sudo_password_file: sudo_password", f"sudo_password_file: {lab.sudo_password_file}"))
    r = fab("backup", "--inventory", str(inv), "--backup-dir", str(tmp_path / "b"))
    assert r.returncode == 2 and "unknown host key" in r.stdout, r.stdout
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").rglob("*"))


def test_killing_the_laptop_mid_directory_dump_removes_the_dump_from_the_host(lab, tmp_path, tool_on):
    """pg_dump -Fd writes the database on the host first: a backup that dies takes that copy with it."""
    tool_on("region1", "tar", "#!/bin/sh\ncase \"$*\" in *--verbatim-files-from*) sleep 139;; esac\n"
                              "exec /usr/bin/tar \"$@\"\n")
    proc = subprocess.Popen([FAB, "backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path),
                             "--dump-format", "directory"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: running(lab, "region1", "sleep 139"), 60, "the dump's tar to start (pg_dump done)")
    dumped = lab.run("region1", f"ls {hostpaths.DUMP_ROOT}/*/db/toc.dat").stdout
    assert "/run." in dumped and lab.run("region1", f"stat -c %a {hostpaths.DUMP_ROOT}/run.*").stdout.strip() == "700"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not running(lab, "region1", "sleep 139"), 20, "the orphaned dump to end")
    wait_for(lambda: not lab.run("region1", f"ls -A {hostpaths.DUMP_ROOT}").stdout.strip(), 20,
             "the dump directory to be removed")
