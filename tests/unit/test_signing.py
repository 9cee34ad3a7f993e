"""Signed sets (maasops.signing) with a real ssh-keygen key made here: what is signed verifies as its signer's, a
changed byte or an unlisted key does not, and an unsigned set is accepted only from before signing (format 1) with
--trust-unsigned."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from maasops import signing

DATA = b'{"deployment": "prod"}\n'


def _key(where: Path, name: str) -> Path:
    k = where / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(k)], check=True)
    return k


def _signers(where: Path, **keys: Path) -> Path:
    """An allowed_signers file listing each principal's key."""
    f = where / "allowed_signers"
    f.write_text("".join(f"{who} {' '.join(k.with_suffix('.pub').read_text().split()[:2])}\n"
                         for who, k in keys.items()))
    return f


@pytest.fixture
def signed(tmp_path) -> tuple[Path, Path]:
    """A set directory whose manifest.json is signed, and the key that signed it."""
    key = _key(tmp_path, "alice")
    set_dir = tmp_path / "set"
    set_dir.mkdir()
    (set_dir / "manifest.json").write_bytes(DATA)
    sig = signing.sign(set_dir / "manifest.json", key)
    assert sig == set_dir / signing.SIGNATURE and sig.stat().st_mode & 0o777 == 0o600
    assert sig.read_text().startswith("-----BEGIN SSH SIGNATURE-----")
    return set_dir, key


def test_a_signed_manifest_verifies_as_its_signers(signed, tmp_path):
    set_dir, key = signed
    trust = signing.check(set_dir, DATA, _signers(tmp_path, alice=key))
    assert trust == signing.Trust(signer="alice")


@pytest.mark.parametrize("at", [0, len(DATA) // 2, len(DATA) - 1])
def test_one_changed_byte_fails(signed, tmp_path, at):
    set_dir, key = signed
    changed = bytearray(DATA)
    changed[at] ^= 0x01
    trust = signing.check(set_dir, bytes(changed), _signers(tmp_path, alice=key))
    assert trust.signer is None and trust.problem.startswith("the set manifest is not what alice signed")


def test_the_bytes_given_are_checked_not_the_file(signed, tmp_path):
    set_dir, key = signed
    (set_dir / "manifest.json").write_bytes(b"{}\n")  # the file changed after it was read: what was read counts
    assert signing.check(set_dir, DATA, _signers(tmp_path, alice=key)).signer == "alice"


def test_a_key_the_allowed_signers_do_not_list_is_named_by_its_fingerprint(signed, tmp_path):
    set_dir, _ = signed
    mallory = _key(tmp_path, "mallory")
    trust = signing.check(set_dir, DATA, _signers(tmp_path, mallory=mallory))
    assert trust.signer is None and "which" in trust.problem and "does not list" in trust.problem
    assert "SHA256:" in trust.problem


def test_a_missing_allowed_signers_file_says_where_it_should_be(signed, tmp_path):
    set_dir, _ = signed
    trust = signing.check(set_dir, DATA, tmp_path / "nowhere")
    assert trust.problem.startswith(f"no allowed_signers file at {tmp_path / 'nowhere'}")


def test_a_signature_that_is_a_link_or_too_big_is_not_read(signed, tmp_path):
    set_dir, key = signed
    signers = _signers(tmp_path, alice=key)
    real = set_dir / signing.SIGNATURE
    real.rename(tmp_path / "sig")
    real.symlink_to(tmp_path / "sig")
    assert signing.check(set_dir, DATA, signers).problem.startswith(f"{signing.SIGNATURE} cannot be read")
    real.unlink()
    real.write_bytes(b"x" * (signing.MAX_SIGNATURE + 1))
    assert "larger than 64 KiB" in signing.check(set_dir, DATA, signers).problem


def test_unsigned_is_accepted_only_for_format_1_with_trust_unsigned(tmp_path):
    key = _key(tmp_path, "alice")
    signers = _signers(tmp_path, alice=key)
    unsigned = tmp_path / "set"
    unsigned.mkdir()
    assert signing.check(unsigned, DATA, signers).problem.startswith("the set is not signed: nothing proves")
    assert signing.check(unsigned, DATA, signers, predates_signing=True).problem.startswith("the set is not signed")
    assert signing.check(unsigned, DATA, signers, trust_unsigned=True) == signing.Trust(problem=signing.STRIPPED)
    accepted = signing.check(unsigned, DATA, signers, trust_unsigned=True, predates_signing=True)
    assert accepted == signing.Trust(warning=signing.UNSIGNED_WARNING)


def test_the_signing_key_is_the_one_given_else_the_first_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(signing.SigningError, match="no SSH key to sign the set with"):
        signing.signing_key(None)
    with pytest.raises(signing.SigningError, match=f"signing key {tmp_path / 'k'} does not exist"):
        signing.signing_key(tmp_path / "k")
    (tmp_path / ".ssh").mkdir()
    rsa = _key(tmp_path / ".ssh", "id_rsa")
    assert signing.signing_key(None) == rsa
    ed = _key(tmp_path / ".ssh", "id_ed25519")
    assert signing.signing_key(None) == ed
    assert signing.signing_key(Path("~/.ssh/id_rsa")) == rsa


def test_a_key_that_cannot_sign_is_found_before_the_backup(tmp_path):
    key = _key(tmp_path, "alice")
    signing.can_sign(key)
    (tmp_path / "broken").write_text("not a key\n")
    (tmp_path / "broken").chmod(0o600)
    with pytest.raises(signing.SigningError, match=f"^signing with {tmp_path / 'broken'} failed: "):
        signing.can_sign(tmp_path / "broken")


def test_the_default_allowed_signers_follow_xdg_config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert signing.default_allowed_signers() == tmp_path / "cfg" / "maasops" / "allowed_signers"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert signing.default_allowed_signers() == tmp_path / ".config" / "maasops" / "allowed_signers"
