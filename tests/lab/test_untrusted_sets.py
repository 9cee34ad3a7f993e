"""A tampered set cannot write one byte outside MAAS's trees (issue 12), against the lab.

Every attack is refused before any unit stops, with a message that names the member or the
signature's fault, and nothing it carries reaches the controller. The confinement does not
depend on trust: the forgeries below are signed with the lab's own key (an insider's worst
case) and are still refused; the signature tests show the outer wall.
"""

from __future__ import annotations

import json
import subprocess
import tarfile

import pyrage
import pytest

from maasops import backupset, signing
from maasops import manifest as mf
from maasops.lab.lab import SIGNER
from tests.forge import forge, info
from tests.labtools import backed_up, fab, journal_lines, sets, unit_states

pytestmark = pytest.mark.lab
PAYLOAD = b"* * * * * root touch /tmp/pwned\n"
# What each attack would leave on rack2 if it got through.
LEFT = ("/etc/cron.d/x", "/root/.ssh/authorized_keys_x", "/var/lib/maas/sh", "/var/lib/maas/sda",
        "/var/lib/maas/shadow", "/var/lib/maas/evil", "/tmp/pwned")


def _dir(name: str) -> tarfile.TarInfo:
    return info(name, tarfile.DIRTYPE, 0o755)


# attack: (members added, the member the refusal names, the rule the laptop's member check states)
ATTACKS = {
    "out-of-tree member": ([(info("etc/cron.d/x", size=len(PAYLOAD)), PAYLOAD)], "etc/cron.d/x", "outside the trees"),
    "root's ssh keys": ([(info("root/.ssh/authorized_keys_x", size=4), b"key\n")], "root/.ssh/authorized_keys_x",
                        "outside the trees"),
    "absolute member": ([(info("/etc/cron.d/x", size=len(PAYLOAD)), PAYLOAD)], "etc/cron.d/x",
                        "not a plain relative name"),
    "dot-dot member": ([(info("var/lib/maas/../../../etc/cron.d/x", size=len(PAYLOAD)), PAYLOAD)],
                       "../../../etc/cron.d/x", "not a plain relative name"),
    "absolute symlink, then a file through it": (
        [(info("var/lib/maas/evil", tarfile.SYMTYPE, 0o777, link="/etc/cron.d"), None),
         (info("var/lib/maas/evil/x", size=len(PAYLOAD)), PAYLOAD)], "var/lib/maas/evil",
        "a symbolic link to '/etc/cron.d'"),
    "relative symlink, then a file through it": (
        [(info("var/lib/maas/evil", tarfile.SYMTYPE, 0o777, link="../../../etc/cron.d"), None),
         (info("var/lib/maas/evil/x", size=len(PAYLOAD)), PAYLOAD)], "var/lib/maas/evil", "outside the trees"),
    "hard link to /etc/shadow": ([(info("var/lib/maas/shadow", tarfile.LNKTYPE, link="etc/shadow"), None)],
                                 "var/lib/maas/shadow", "a hard link to 'etc/shadow'"),
    "setuid root file": ([(info("var/lib/maas/sh", mode=0o4755, size=4), b"#!/\n")], "var/lib/maas/sh",
                         "setuid, setgid or sticky"),
    "world-writable block device": ([(info("var/lib/maas/sda", tarfile.BLKTYPE, 0o666), None)], "var/lib/maas/sda",
                                    "(device, fifo or socket)"),
}


@pytest.fixture(scope="module")
def good_set(lab, tmp_path_factory):
    return backed_up(lab.inventory, tmp_path_factory.mktemp("good"))


def left_on_rack2(lab) -> list[str]:
    out = lab.run("rack2", "ls -d " + " ".join(LEFT) + " 2>/dev/null; true").stdout
    return out.split()


def refused(lab, set_dir, *extra: str) -> str:
    """Restore ``set_dir``: it must be refused with nothing stopped and nothing left; returns its output."""
    before = (unit_states(lab), journal_lines(lab))
    r = fab("restore", str(set_dir), "--inventory", str(lab.inventory), *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    assert (unit_states(lab), journal_lines(lab)) == before  # no unit was stopped
    assert left_on_rack2(lab) == []
    return r.stdout


@pytest.mark.parametrize("listing", [True, False], ids=["manifest forged too", "archive alone"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_archive_member_a_restore_must_not_write_is_refused(lab, good_set, tmp_path, attack, listing):
    added, member, rule = ATTACKS[attack]
    bad = forge(good_set, tmp_path / good_set.name, "rack2", lambda items: items + added, listing=listing,
                sign_with=lab.signing_key)
    out = refused(lab, bad)
    assert member in out, out
    if listing:  # the forged listing gives it away before anything is read: verify says so too
        v = fab("verify", str(bad), "--inventory", str(lab.inventory))
        assert v.returncode == 1 and member in v.stdout, v.stdout
    else:  # only the bytes tell: checked on the laptop as they go up, before anything stops
        assert "rack2: upload config archive: refused, nothing written" in out and rule in out, out


def test_a_member_below_a_directory_the_archive_does_not_hold_is_refused(lab, good_set, tmp_path):
    bad = forge(good_set, tmp_path / good_set.name, "rack2",
                lambda items: items + [(info("var/lib/maas/new/x", size=2), b"x\n")], sign_with=lab.signing_key)
    assert "its directory /var/lib/maas/new is not in the archive" in refused(lab, bad)


def test_an_unsigned_set_is_refused_and_trust_unsigned_takes_no_set_made_after_signing(lab, good_set, tmp_path):
    bad = forge(good_set, tmp_path / good_set.name, "rack2", lambda items: items)
    assert "the set is not signed" in refused(lab, bad)
    v = fab("verify", str(bad), "--inventory", str(lab.inventory), "--trust-unsigned")  # format 2: it was signed
    assert v.returncode == 1 and "--trust-unsigned accepts only format 1 sets" in v.stdout, v.stdout
    assert "UNSIGNED SET ACCEPTED" not in v.stdout  # a format 1 set: tests/lab/test_untrusted_reads.py


def test_a_set_signed_by_a_key_not_allowed_is_refused_naming_the_key(lab, good_set, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(other)], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
    bad = forge(good_set, tmp_path / good_set.name, "rack2", lambda items: items, sign_with=other)
    out = refused(lab, bad)
    assert f"signed by key {fingerprint}" in out and "does not list" in out, out


def test_one_byte_changed_after_signing_is_refused(lab, good_set, tmp_path):
    bad = tmp_path / good_set.name
    forge(good_set, bad, "rack2", lambda items: items, sign_with=lab.signing_key)
    m = bad / mf.MANIFEST
    m.write_text(m.read_text().replace('"complete": true', '"complete":  true'))
    out = refused(lab, bad)
    assert f"the set manifest is not what {SIGNER} signed" in out, out


def test_a_forged_encrypted_set_is_refused_encryption_proves_nothing(lab, tmp_path):
    key = pyrage.x25519.Identity.generate()
    (tmp_path / "key.txt").write_text(f"{key}\n")
    (tmp_path / "key.txt").chmod(0o600)  # an identity others can read is refused
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path / "b"), "--encrypt-to",
            str(key.to_public()))
    assert r.returncode == 0, r.stdout + r.stderr
    [s] = sets(tmp_path / "b")
    # The recipient is in the set manifest: anyone can encrypt a payload to it and fix the checksums.
    recipient = json.loads((s / mf.MANIFEST).read_text())["options"]["encrypt_to"]
    hdir = s / "rack2"
    hm = json.loads((hdir / mf.MANIFEST).read_text())
    evil = pyrage.encrypt(b"not an archive", [pyrage.x25519.Recipient.from_str(recipient)])
    (hdir / hm["archive"]["file"]).write_bytes(evil)
    hm["archive"].update(sha256=backupset.file_sha256(hdir / hm["archive"]["file"]), size=len(evil))
    backupset.write_json(hdir / mf.MANIFEST, hm)
    sm = json.loads((s / mf.MANIFEST).read_text())
    sm["hosts"]["rack2"].update(manifest_sha256=backupset.file_sha256(hdir / mf.MANIFEST))
    sm["hosts"]["rack2"]["files"][hm["archive"]["file"]] = hm["archive"]["sha256"]
    backupset.write_json(s / mf.MANIFEST, sm)
    (s / signing.SIGNATURE).unlink()
    out = refused(lab, s, "--decrypt-key", str(tmp_path / "key.txt"))
    assert "the set is not signed" in out


@pytest.mark.parametrize("args,says", [
    (("--deployment", "../../etc"), "--deployment '../../etc' is not a safe name"),
    (("--deployment", "a/b"), "--deployment 'a/b' is not a safe name"),
])
def test_a_hostile_deployment_name_is_refused_before_anything(lab, tmp_path, args, says):
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path), *args)
    assert r.returncode == 2 and says in r.stdout + r.stderr, r.stdout + r.stderr
    assert not any(tmp_path.rglob("*"))


def test_a_hostile_host_name_in_an_inventory_or_map_is_refused(lab, good_set, tmp_path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text(lab.inventory.read_text().replace("rack1:", "../rack1:"))
    inv_dir = lab.inventory.parent
    for name in ("ssh_config", "sudo_password", "id_ed25519", "allowed_signers"):
        (tmp_path / name).symlink_to(inv_dir / name)
    r = fab("backup", "--inventory", str(inv), "--backup-dir", str(tmp_path / "b"))
    assert r.returncode == 2 and "'../rack1' is not a safe name" in r.stdout + r.stderr, r.stdout + r.stderr
    r = fab("restore", str(good_set), "--inventory", str(lab.inventory), "--map", "rack1=../../x")
    assert r.returncode == 2 and "'../../x' is not a safe name" in r.stdout + r.stderr


@pytest.fixture(scope="module")
def directory_set(lab, tmp_path_factory):
    """A set whose database dump is in PostgreSQL's directory format (a tar the restore unpacks)."""
    return backed_up(lab.inventory, tmp_path_factory.mktemp("dirdump"), "--dump-format", "directory")


DUMP_ATTACKS = {
    "a data file that is a symlink to /etc/shadow": ((info("db/99999.dat", tarfile.SYMTYPE, 0o777,
                                                           link="/etc/shadow"), None), "'db/99999.dat'"),
    "a cron job beside the dump": ((info("etc/cron.d/x", size=len(PAYLOAD)), PAYLOAD), "'etc/cron.d/x'"),
    "a dot-dot member": ((info("db/../../../../etc/cron.d/x", size=len(PAYLOAD)), PAYLOAD), "'db/../"),
}


@pytest.mark.parametrize("attack", list(DUMP_ATTACKS))
def test_a_directory_dump_member_no_dump_holds_is_refused_before_anything_stops(lab, directory_set, tmp_path,
                                                                                attack):
    added, member = DUMP_ATTACKS[attack]
    bad = forge(directory_set, tmp_path / directory_set.name, "region1", lambda items: items + [added],
                sign_with=lab.signing_key, part="dump")
    out = refused(lab, bad)
    assert "region1: upload database dump: refused, nothing written" in out and member in out, out
    v = fab("verify", str(bad), "--inventory", str(lab.inventory))
    assert v.returncode == 1 and "dump is incomplete" in v.stdout and member in v.stdout, v.stdout
    assert lab.run("region1", "ls /var/lib/maasops/restore/latest/pgdump 2>/dev/null; true").stdout == ""


def test_a_directory_dump_without_its_table_of_contents_is_incomplete(lab, directory_set, tmp_path):
    bad = forge(directory_set, tmp_path / directory_set.name, "region1",
                lambda items: [(i, b) for i, b in items if i.name != "db/toc.dat"], sign_with=lab.signing_key,
                part="dump")
    v = fab("verify", str(bad), "--inventory", str(lab.inventory))
    assert v.returncode == 1 and "no db/toc.dat: pg_dump did not finish" in v.stdout, v.stdout
