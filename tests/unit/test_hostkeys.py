"""Host keys as OpenSSH checks them: known_hosts read by maasops, @revoked refused, accept-new recording safely.

Keys are made by the local ssh-keygen; no host is contacted.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import paramiko
import pytest
from paramiko.hostkeys import HostKeyEntry

from maasops.errors import HostKeyRefused
from maasops.hostkeys import DEFAULT_FILES, AcceptNew, KnownHosts, RefuseUnknown, configured_files, remember_key


def new_key(tmp_path: Path, kind: str = "ed25519") -> tuple[str, paramiko.PKey]:
    """A fresh public key: its ``type base64`` text and the key."""
    path = tmp_path / f"key-{len(list(tmp_path.glob('key-*')))}"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, timeout=60)
    text = " ".join(path.with_suffix(".pub").read_text().split()[:2])
    return text, HostKeyEntry.from_line(f"x {text}").key


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "keys"
    d.mkdir()
    return lambda kind="ed25519": new_key(d, kind)


def test_known_hosts_are_read_skipping_comments_garbled_lines_and_certificate_authorities(tmp_path, keys):
    (region, region_key), (rack, _), (ca, _) = keys(), keys(), keys()
    known = tmp_path / "known_hosts"
    known.write_text(f"# a comment\n\nregion1,10.0.0.11 {region}\nthis line is not a key\n"
                     f"@cert-authority *.maas {ca}\n[rack1]:2222 {rack}\n")
    k = KnownHosts([known, tmp_path / "absent"])
    assert k.keys.lookup("region1")["ssh-ed25519"] == region_key
    assert k.keys.lookup("10.0.0.11")["ssh-ed25519"] == region_key
    assert k.keys.lookup("[rack1]:2222") is not None
    assert k.keys.lookup("rack9.maas") is None and k.revoked == set()


def test_hashed_known_hosts_are_read(tmp_path, keys):
    region, region_key = keys()
    known = tmp_path / "known_hosts"
    known.write_text(f"region1 {region}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True, capture_output=True, timeout=60)
    assert "region1" not in known.read_text()
    assert KnownHosts([known]).keys.lookup("region1")["ssh-ed25519"] == region_key


def test_a_revoked_key_is_never_installed_as_known(tmp_path, keys):
    (good, good_key), (bad, bad_key) = keys(), keys()
    known = tmp_path / "known_hosts"
    known.write_text(f"region1 {good}\nrack1 {bad}\n@revoked * {bad}\n")
    k = KnownHosts([known])
    assert k.is_revoked(bad_key) and not k.is_revoked(good_key)
    client = paramiko.SSHClient()
    k.install(client)
    assert client.get_host_keys().lookup("region1") is not None
    assert client.get_host_keys().lookup("rack1") is None


def test_strict_checking_refuses_an_unknown_a_changed_and_a_revoked_key(tmp_path, keys):
    (recorded, _), (_, other_key), (revoked, revoked_key) = keys("rsa"), keys(), keys()
    known = tmp_path / "known_hosts"
    known.write_text(f"region1 {recorded}\n@revoked * {revoked}\n")
    policy = RefuseUnknown(KnownHosts([known]))
    for host, key, why in (("rack1", other_key, "unknown"), ("region1", other_key, "changed"),
                           ("rack1", revoked_key, "revoked")):
        with pytest.raises(HostKeyRefused) as err:
            policy.missing_host_key(paramiko.SSHClient(), host, key)
        assert (err.value.hostname, err.value.why) == (host, why)


def test_accept_new_records_a_new_hosts_key_in_a_private_file(tmp_path, keys):
    _, key = keys()
    target = tmp_path / "ssh" / "known_hosts"
    known = KnownHosts([target])
    client = paramiko.SSHClient()
    old = os.umask(0o000)
    try:
        AcceptNew(known, target).missing_host_key(client, "region1", key)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert client.get_host_keys().lookup("region1")["ssh-ed25519"] == key
    assert KnownHosts([target]).keys.lookup("region1")["ssh-ed25519"] == key  # as ssh would read it back


def test_accept_new_never_replaces_a_recorded_key_nor_records_a_revoked_one(tmp_path, keys):
    (recorded, _), (_, other_key), (revoked, revoked_key) = keys("rsa"), keys(), keys()
    known_file = tmp_path / "known_hosts"
    known_file.write_text(f"region1 {recorded}\n@revoked * {revoked}\n")
    before = known_file.read_text()
    policy = AcceptNew(KnownHosts([known_file]), known_file)
    for host, key, why in (("region1", other_key, "changed"), ("rack1", revoked_key, "revoked")):
        with pytest.raises(HostKeyRefused) as err:
            policy.missing_host_key(paramiko.SSHClient(), host, key)
        assert err.value.why == why
    assert known_file.read_text() == before


def test_accept_new_refuses_a_second_key_for_a_host_it_just_recorded(tmp_path, keys):
    (_, first), (_, second) = keys(), keys("ecdsa")
    target = tmp_path / "known_hosts"
    policy = AcceptNew(KnownHosts([target]), target)
    policy.missing_host_key(paramiko.SSHClient(), "region1", first)
    with pytest.raises(HostKeyRefused, match="changed host key for region1"):
        policy.missing_host_key(paramiko.SSHClient(), "region1", second)
    assert len(target.read_text().splitlines()) == 1


def test_remember_key_appends_to_an_existing_file_keeping_its_mode(tmp_path, keys):
    _, key = keys()
    target = tmp_path / "known_hosts"
    target.write_text("# mine\n")
    target.chmod(0o644)
    remember_key(target, "region1", key)
    assert target.read_text().startswith("# mine\nregion1 ssh-ed25519 ")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_the_files_are_the_ssh_configs_or_openssh_defaults():
    assert configured_files({"userknownhostsfile": "/a/known /b/known"}) == [Path("/a/known"), Path("/b/known")]
    assert configured_files({"userknownhostsfile": ["~/k"]}) == [Path(os.path.expanduser("~/k"))]
    assert configured_files({}) == [Path(os.path.expanduser(p)) for p in DEFAULT_FILES]
    assert DEFAULT_FILES == ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")
