"""What the laptop checks is what it reads (issue 24), against the lab: one read of the signed manifest, no link
followed into or inside a set, no signature removed under --trust-unsigned, no escape code from a host shown raw.

The forgeries are plain file operations and ssh-keygen, never maasops code. Each refusal is proved on the hosts:
nothing written, no unit stopped or started.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from maasops.results import PARTIAL
from tests.labtools import backed_up, fab, journal_lines, unit_states

pytestmark = pytest.mark.lab
ESC = "\x1b]0;pwned\x07\x1b[2J"  # retitles the terminal and clears the screen, if shown raw
RACKD = "/etc/maas/rackd.conf"  # rack2 (deb 3.5): what a forged host manifest would re-point


@pytest.fixture(scope="module")
def good_set(lab, tmp_path_factory):
    return backed_up(lab.inventory, tmp_path_factory.mktemp("good"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sign(manifest: Path, key: Path) -> None:
    """Re-sign the set manifest as a compromised controller's set would be (the lab key is trusted)."""
    manifest.with_name(manifest.name + ".sig").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", "maasops", str(manifest)], check=True)


def _host_state(lab) -> tuple:
    return unit_states(lab), journal_lines(lab), lab.run("rack2", f"sha256sum {RACKD}").stdout


def _refused(lab, set_dir: Path, *extra: str) -> tuple[str, str]:
    """verify (exit 1) and restore (exit 2) of ``set_dir``, with the hosts left as they were; their outputs."""
    before = _host_state(lab)
    v = fab("verify", str(set_dir), "--inventory", str(lab.inventory), *extra)
    assert v.returncode == 1, v.stdout + v.stderr
    r = fab("restore", str(set_dir), "--inventory", str(lab.inventory), *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    assert _host_state(lab) == before  # nothing stopped, nothing started, nothing written
    assert "nothing was touched" in r.stdout, r.stdout
    return v.stdout, r.stdout


@pytest.mark.parametrize("resigned", [False, True], ids=["link alone", "re-signed with a trusted key"])
def test_a_set_whose_host_manifest_is_a_symbolic_link_is_refused(lab, good_set, tmp_path, resigned):
    bad = tmp_path / good_set.name
    shutil.copytree(good_set, bad)
    outside = tmp_path / "forged-manifest.json"
    hm = json.loads((bad / "rack2" / "manifest.json").read_text())
    hm["maas_url"] = "http://10.99.99.99:5240/MAAS"
    outside.write_text(json.dumps(hm))
    (bad / "rack2" / "manifest.json").unlink()
    (bad / "rack2" / "manifest.json").symlink_to(outside)
    if resigned:  # the set manifest records the forged manifest's checksum, and is signed again
        sm = json.loads((bad / "manifest.json").read_text())
        sm["hosts"]["rack2"]["manifest_sha256"] = _sha(outside)
        (bad / "manifest.json").write_text(json.dumps(sm))
        _sign(bad / "manifest.json", lab.signing_key)
    v, r = _refused(lab, bad)
    for out in (v, r):
        assert "rack2/manifest.json is a symbolic link" in out, out


def test_a_set_whose_host_directory_is_a_symbolic_link_is_refused(lab, good_set, tmp_path):
    bad = tmp_path / good_set.name
    shutil.copytree(good_set, bad)
    shutil.move(bad / "rack2", tmp_path / "rack2-elsewhere")
    (bad / "rack2").symlink_to(tmp_path / "rack2-elsewhere")
    v, r = _refused(lab, bad)
    assert "rack2 is a symbolic link" in v and "rack2 is a symbolic link" in r, v + r


def test_a_later_set_whose_signature_was_deleted_is_refused_even_with_trust_unsigned(lab, good_set, tmp_path):
    bad = tmp_path / good_set.name
    shutil.copytree(good_set, bad)
    (bad / "manifest.json.sig").unlink()
    v, r = _refused(lab, bad, "--trust-unsigned")
    for out in (v, r):
        assert "its signature was removed" in out and "--trust-unsigned accepts only format 1 sets" in out, out
        assert "UNSIGNED SET ACCEPTED" not in out


def test_a_format_1_set_from_before_signing_is_accepted_unsigned_with_trust_unsigned(lab, good_set, tmp_path):
    old = tmp_path / good_set.name
    shutil.copytree(good_set, old)
    (old / "manifest.json.sig").unlink()
    sm = json.loads((old / "manifest.json").read_text())
    sm.pop("format_version")
    for host in sm["hosts"]:
        path = old / host / "manifest.json"
        hm = json.loads(path.read_text())
        hm.pop("format_version")
        path.write_text(json.dumps(hm))
        sm["hosts"][host]["manifest_sha256"] = _sha(path)
    (old / "manifest.json").write_text(json.dumps(sm))
    v = fab("verify", str(old), "--inventory", str(lab.inventory), "--trust-unsigned")
    assert v.returncode == 0 and "UNSIGNED SET ACCEPTED (--trust-unsigned)" in v.stdout, v.stdout + v.stderr
    assert fab("verify", str(old), "--inventory", str(lab.inventory)).returncode == 1


def test_escape_codes_a_host_writes_on_stderr_are_shown_escaped(lab, tmp_path, tool_on):
    before = unit_states(lab)
    tool_on("rack2", "tar", "#!/bin/sh\nprintf '\\033]0;pwned\\007\\033[2Jevil\\n' >&2\nexit 2\n")
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode != 0, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "\\x1b]0;pwned\\x07\\x1b[2Jevil" in out, out
    assert "\x1b" not in out and "\x07" not in out
    assert unit_states(lab) == before  # the failed backup started what it stopped


def test_escape_codes_in_a_regiond_conf_value_are_shown_escaped(lab):
    conf = "/etc/maas/regiond.conf"
    saved = lab.run("region1", f"cat {conf}").stdout
    try:
        # YAML refuses a raw ESC, but a double-quoted value's escapes make one: \e is ESC, \a is BEL.
        hostile = [f'database_host: "\\e]0;pwned\\a\\e[2J{ln.split(":", 1)[1].strip()}"'
                   if ln.startswith("database_host:") else ln for ln in saved.splitlines()]
        lab.run("region1", f"cat > {conf}", input="\n".join(hostile) + "\n")
        for args in ((), ("--json",)):
            r = fab("probe", "--inventory", str(lab.inventory), *args)
            out = r.stdout + r.stderr
            assert "\x1b" not in out and "\x07" not in out, out
            assert "\\x1b]0;pwned" in out if not args else "\\\\x1b]0;pwned" in out, out
    finally:
        lab.run("region1", f"cat > {conf}", input=saved)


def test_a_host_that_reports_a_huge_size_is_still_stopped_at_the_laptops_ceiling(lab, tmp_path, tool_on):
    before = unit_states(lab)
    tool_on("rack1", "du", "#!/bin/sh\necho '99999999999999999999999\t.'\n")  # no bound, if the host decided
    # One member that never ends (zeros after an archive's end are refused sooner, by the parser)
    endless = ("import sys, tarfile\nt = tarfile.TarInfo(\"etc/maas/endless\")\nt.size = 1 << 40\n"
               "out = sys.stdout.buffer\nout.write(t.tobuf(tarfile.GNU_FORMAT))\nzeros = bytes(1 << 20)\n"
               "while True:\n    out.write(zeros)\n")
    tool_on("rack1", "tar", f"#!/bin/sh\nexec python3 -c '{endless}'\n")
    r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(tmp_path), "--max-stream-gib", "1")
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("rack1 "))
    assert r.returncode == PARTIAL and "went past 1024 MiB" in row, r.stdout
    assert unit_states(lab) == before


def test_a_sudo_password_file_or_identity_others_can_read_is_refused_before_anything(lab, good_set, tmp_path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text(lab.inventory.read_text())
    for name in ("ssh_config", "id_ed25519", "allowed_signers"):
        (tmp_path / name).symlink_to(lab.inventory.parent / name)
    shutil.copy(lab.sudo_password_file, tmp_path / "sudo_password")
    (tmp_path / "sudo_password").chmod(0o644)
    before = journal_lines(lab)
    r = fab("backup", "--inventory", str(inv), "--backup-dir", str(tmp_path / "b"))
    assert r.returncode == 2 and "sudo_password is readable by others (mode 0644)" in r.stdout + r.stderr, r.stdout
    key = tmp_path / "key.txt"
    key.write_text("AGE-SECRET-KEY-1QQQQ\n")
    key.chmod(0o640)
    r = fab("verify", str(good_set), "--inventory", str(lab.inventory), "--decrypt-key", str(key))
    assert r.returncode == 2 and "key.txt is readable by others (mode 0640)" in r.stdout + r.stderr, r.stdout
    assert journal_lines(lab) == before and not (tmp_path / "b").exists()
