"""The lab against real sshd, sudo and PostgreSQL, reached over Fabric like a real deployment."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from maasops import channel, connect, fingerprints, stream
from maasops.command import Cmd
from maasops.errors import RemoteError
from maasops.lab import lab as lab_mod
from maasops.lab import namespaces
from tests.labtools import start_and_wait

pytestmark = pytest.mark.lab


def test_hosts_see_their_own_files_at_the_same_path(cxn):
    region, rack2 = cxn("region1"), cxn("rack2")
    a = channel.run(region, Cmd("cat /var/lib/maas/maas_id"), "read", user="root").stdout
    b = channel.run(rack2, Cmd("cat /var/lib/maas/maas_id"), "read", user="root").stdout
    assert a and b and a != b
    assert channel.run(region, Cmd("hostname"), "hostname").stdout.strip() == "region1"
    assert channel.run(rack2, Cmd("test -e /etc/maas/regiond.conf"), "look", check=False).exited == 1
    assert not Path("/etc/maas/regiond.conf").exists()  # nothing leaks onto this machine


def test_snap_is_read_only_and_reported_like_snapd(cxn):
    rack1 = cxn("rack1")
    r = channel.run(rack1, Cmd("touch /snap/maas/current/x"), "write snap", user="root", check=False)
    assert r.exited != 0 and "Read-only file system" in r.stderr
    out = channel.run(rack1, Cmd("snap list maas"), "snap list").stdout.splitlines()
    assert out[0].split()[:3] == ["Name", "Version", "Rev"]
    assert out[1].split()[:4] == ["maas", "3.4.2-14353-g.5a5221d57", "32469", "3.4/stable"]
    assert channel.run(rack1, Cmd("cat /var/snap/maas/common/snap_mode"), "mode").stdout == "rack"


def test_deb_packages_show_in_the_hosts_own_dpkg(cxn):
    out = channel.run(cxn("region1"), Cmd("dpkg-query -W 'maas-*'"), "dpkg").stdout
    assert "maas-region-controller\t1:3.5.3" in out
    assert "maas-rack-controller" not in out
    assert "maas-rack-controller\t1:3.5.3" in channel.run(cxn("rack2"), Cmd("dpkg-query -W 'maas-*'"), "dpkg").stdout


def test_systemctl_stand_in_keeps_state_and_exit_codes(cxn):
    c = cxn("region1")
    assert channel.run(c, Cmd("systemctl is-active maas-regiond"), "is-active").stdout.strip() == "active"
    try:
        channel.run(c, Cmd("systemctl stop maas-regiond"), "stop", user="root")
        r = channel.run(c, Cmd("systemctl is-active maas-regiond"), "is-active", check=False)
        assert (r.stdout.strip(), r.exited) == ("inactive", 3)
        r = channel.run(c, Cmd("systemctl start maas-nonesuch"), "start", user="root", check=False)
        assert r.exited == 5 and "not found" in r.stderr
        r = channel.run(c, Cmd("systemctl stop maas-regiond"), "stop", check=False)  # not root
        assert r.exited != 0
    finally:
        channel.run(c, Cmd(start_and_wait("maas-regiond")), "start", user="root")


def test_dbupgrade_touches_the_db_and_fails_like_maas_when_it_is_down(cxn):
    c = cxn("region1")
    log = "/var/log/maas-lab/dbupgrade.log"
    before = channel.run(c, Cmd(f"if [ -f {log} ]; then wc -l < {log}; else echo 0; fi"), "count", user="root").stdout
    channel.run(c, Cmd("maas-region dbupgrade"), "dbupgrade", user="root")
    after = channel.run(c, Cmd(f"wc -l < {log}"), "count", user="root").stdout.strip()
    assert int(after) == int(before) + 1
    try:
        channel.run(c, Cmd("systemctl stop postgresql"), "stop db", user="root")
        r = channel.run(c, Cmd("maas-region dbupgrade"), "dbupgrade", user="root", check=False)
        assert r.exited == 1 and "OperationalError" in r.stderr
    finally:
        channel.run(c, Cmd("systemctl start postgresql"), "start db", user="root")


def test_pg_dumpall_over_fabric_restores_into_a_fresh_cluster(cxn, scratch_pg, tmp_path):
    c = cxn("region1")
    got = stream.download(c, Cmd("pg_dumpall -c"), tmp_path / "dump.sql", "dump", sudo_user="postgres")
    assert (tmp_path / "dump.sql").stat().st_mode & 0o777 == 0o600
    assert got.size > 2 * 1024 * 1024  # the seeded boot images are in it
    source = fingerprints.parse_fingerprint(channel.run(
        c, Cmd(f"psql -XAt -d maasdb -c {shlex.quote(fingerprints.FINGERPRINT_SQL)}"), "fp",
        user="postgres").stdout)
    with open(tmp_path / "dump.sql") as dump:  # psql -f - : postgres cannot read root's tmp dir
        subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-h", str(scratch_pg),
                        "-f", "-", "postgres"], check=True, capture_output=True, cwd="/", stdin=dump)
    restored = fingerprints.parse_fingerprint(subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-XAt", "-h", str(scratch_pg), "-d", "maasdb",
         "-c", fingerprints.FINGERPRINT_SQL], check=True, capture_output=True, text=True, cwd="/").stdout)
    assert len(source) >= 10 and restored == source


def test_sudo_password_host_works_and_the_password_never_shows(cxn, lab):
    password = lab.sudo_password_file.read_text()
    c = cxn("rack2")
    r = channel.run(c, Cmd("id -un"), "whoami", user="root")
    assert r.stdout.strip() == "root"
    assert password not in r.stdout + r.stderr
    got = stream.download(c, Cmd("cat /var/lib/maas/maas_id"), Path(lab.dir) / "x", "stream", sudo_user="root")
    assert got.size == 6
    cfg = connect.with_ssh_config(connect.fabric_config(), lab.ssh_config)
    no_pw = connect.connection("rack2", cfg)
    with pytest.raises(RemoteError) as err:
        channel.run(no_pw, Cmd("true"), "sudo", user="root")
    assert "rack2" in str(err.value) and password not in str(err.value)


def test_targets_are_reachable_only_through_the_bastion(cxn, lab):
    assert channel.run(cxn("region1"), Cmd("true"), "via bastion").exited == 0
    cfg = connect.with_ssh_config(connect.fabric_config(), lab.ssh_config)
    direct = connect.connection(lab.host("region1").address, cfg)
    direct.connect_kwargs["key_filename"] = [str(Path(lab.dir) / "id_ed25519")]
    direct.user = "ubuntu"
    direct.client.load_system_host_keys(str(lab.known_hosts))
    with pytest.raises(RemoteError) as err:
        channel.run(direct, Cmd("true"), "direct")
    assert "authentication failed" in str(err.value)


@pytest.mark.parametrize("known", ["nothing", "only the bastion"])
def test_unknown_host_key_is_refused(cxn, lab, tmp_path, known):
    """OpenSSH checks the bastion's key (the jump), paramiko the target's; both refuse an unknown key."""
    lines = [ln for ln in lab.known_hosts.read_text().splitlines()
             if known != "nothing" and lab_mod.BASTION in ln.split()[0].split(",")]
    assert known == "nothing" or len(lines) == 1
    (tmp_path / "known").write_text("".join(ln + "\n" for ln in lines))
    (tmp_path / "ssh_config").write_text(lab.ssh_config.read_text().replace(str(lab.known_hosts),
                                                                            str(tmp_path / "known")))
    cfg = connect.with_ssh_config(connect.fabric_config(), tmp_path / "ssh_config")
    with pytest.raises(RemoteError) as err:
        channel.run(connect.connection("region1", cfg), "true", "connect")
    says = "unknown host key of jump host bastion" if known == "nothing" else "unknown host key (not in known_hosts)"
    assert str(err.value).startswith(f"region1: connect: {says}")


def _running(pid: int) -> bool:
    """True for a live process; a zombie waiting for init to reap it is gone already."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_fab_lab_up_status_down_leave_no_process_mount_or_address(tmp_path):
    d = tmp_path / "lab2"
    fab = [str(Path(sys.executable).parent / "fab")]
    root = Path(__file__).resolve().parents[2]
    up = subprocess.run([*fab, "lab.up", "--regions", "1", "--racks", "1", "--profile", "snap-3.5", "--db-mb", "1",
                         "--combined", "--lab-dir", str(d)], cwd=root, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    assert "region1" in up.stdout and "region+rack" in up.stdout
    the_lab = lab_mod.Lab.load(d)
    try:
        status = subprocess.run([*fab, "lab.status", "--lab-dir", str(d)], cwd=root, capture_output=True, text=True)
        assert status.returncode == 0 and status.stdout.count("up") >= 4 and "down" not in status.stdout
    except BaseException:
        lab_mod.down(d)
        raise
    pids = [p for h in the_lab.hosts for p in namespaces.pids_in(h.netns, the_lab.ns_files(h.name)[0])]
    assert pids
    addresses = [h.address for h in the_lab.hosts]
    down = subprocess.run([*fab, "lab.down", "--lab-dir", str(d)], cwd=root, capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    assert not [p for p in pids if _running(p)]
    assert str(d) not in Path("/proc/self/mountinfo").read_text()
    assert not any(the_lab.lab_id in line for line in
                   subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines())
    addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert not any(a in addrs for a in addresses)
    assert not Path("/sys/class/net", the_lab.bridge).exists()
    assert not d.exists()


def test_units_pass_through_activating_and_regiond_fails_without_its_database(lab):
    try:
        lab.run("region1", "systemctl stop maas-regiond && systemctl start maas-regiond")
        assert lab.run("region1", "systemctl is-active maas-regiond", check=False).stdout.strip() == "activating"
        lab.run("region1", "for i in $(seq 50); do systemctl is-active -q maas-regiond && exit 0; sleep 0.1; done; "
                           "exit 1")
        lab.run("region1", "systemctl stop maas-regiond postgresql && systemctl start maas-regiond && sleep 2")
        assert lab.run("region1", "systemctl is-active maas-regiond", check=False).stdout.strip() == "failed"
    finally:
        lab.run("region1", "systemctl start postgresql && " + start_and_wait("maas-regiond"))


@pytest.mark.parametrize("host,command,says", [
    ("region1", "maas-region dbupgrade --bogus", "unrecognized arguments: --bogus"),
    ("region1", "maas-region migrate", "Unknown command: 'migrate'"),
    ("rack2", "maas-rack register --url http://x:5240/MAAS --secret 00 --force", "unrecognized arguments: --force"),
    ("rack1", "/snap/bin/maas init --mode rack --maas-url http://x:5240/MAAS --secret 00", "invalid choice: '--mode'"),
    ("rack1", "/snap/bin/maas migrate --fake", "unrecognized arguments: --fake"),
    ("rack1", "systemctl --bogus start snap.maas.supervisor", "unrecognized option '--bogus'"),
])
def test_stand_ins_refuse_what_the_real_programs_refuse(lab, host, command, says):
    r = lab.run(host, command, check=False)
    assert r.returncode != 0 and says in r.stderr, r.stderr


def test_maas_rack_register_throws_maas_id_away_and_with_the_secret_on_stdin_leaves_rackd_stopped(lab):
    """What register_command.py does, and why maasops re-points a rack by editing rackd.conf instead."""
    keep = "cp -a /etc/maas/rackd.conf /tmp/rackd.conf && cp -a /var/lib/maas/maas_id /tmp/maas_id && " \
           "cp -a /var/lib/maas/secret /tmp/secret"
    lab.run("rack2", keep)
    try:
        url = lab.run("rack2", "sed -n 's/^- //p' /etc/maas/rackd.conf").stdout.strip()
        lab.run("rack2", f"cat /var/lib/maas/secret | maas-rack register --url {url}")
        assert lab.run("rack2", "test -e /var/lib/maas/maas_id", check=False).returncode == 1
        assert lab.run("rack2", "systemctl is-active maas-rackd", check=False).stdout.strip() == "inactive"
    finally:
        lab.run("rack2", "cp -a /tmp/rackd.conf /etc/maas/rackd.conf && cp -a /tmp/maas_id /var/lib/maas/maas_id "
                         "&& cp -a /tmp/secret /var/lib/maas/secret && " + start_and_wait("maas-rackd"))
