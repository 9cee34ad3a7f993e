"""Encryption at rest (maasops.crypto) with pyrage: what is encrypted to age or SSH recipients decrypts with their
identity, streamed; a wrong identity or a changed byte fails naming the file."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from pathlib import Path

import pyrage
import pytest

from maasops import crypto

DATA = os.urandom(200_000) + b"-- PostgreSQL database dump complete\n"


def _age_identity(where: Path, name: str = "age.key") -> tuple[Path, str]:
    """An age identity file (0600) as age-keygen writes it, and its public key."""
    ident = pyrage.x25519.Identity.generate()
    path = where / name
    path.write_text(f"# created: now\n# public key: {ident.to_public()}\n{ident}\n")
    path.chmod(0o600)
    return path, str(ident.to_public())


def _ssh_identity(where: Path) -> tuple[Path, str]:
    """An unencrypted SSH private key and its public key."""
    key = where / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, key.with_suffix(".pub").read_text().strip()


def _encrypt(path: Path, to: str, data: bytes = DATA) -> tuple[str, int]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return crypto.encrypt_into(fd, crypto.recipients(to))(io.BytesIO(data))


def _decrypt(path: Path, identity: Path) -> bytes:
    with path.open("rb") as src, crypto.decrypted(src, crypto.identities(identity), path.name) as plain:
        return plain.read()


@pytest.mark.parametrize("kind", ["age", "ssh"])
def test_what_is_encrypted_decrypts_with_the_identity(tmp_path, kind):
    identity, public = (_age_identity if kind == "age" else _ssh_identity)(tmp_path)
    stored = tmp_path / "dump.sql.age"
    sha, size = _encrypt(stored, public)
    raw = stored.read_bytes()
    assert raw.startswith(crypto.AGE_MAGIC) and DATA[:64] not in raw
    assert (sha, size) == (hashlib.sha256(raw).hexdigest(), len(raw))  # what was stored, as stored
    assert _decrypt(stored, identity) == DATA


def test_every_recipient_can_decrypt(tmp_path):
    alice, alice_pub = _age_identity(tmp_path, "alice")
    bob, bob_pub = _ssh_identity(tmp_path)
    stored = tmp_path / "archive.tar.age"
    _encrypt(stored, f"{alice_pub}, {bob_pub}")
    assert _decrypt(stored, alice) == _decrypt(stored, bob) == DATA


def test_a_wrong_identity_fails_naming_the_file(tmp_path):
    _, public = _age_identity(tmp_path, "right")
    wrong, _ = _age_identity(tmp_path, "wrong")
    stored = tmp_path / "dump.sql.age"
    _encrypt(stored, public)
    with pytest.raises(crypto.CryptoError, match="^dump.sql.age does not decrypt with the given identity"):
        _decrypt(stored, wrong)


def test_a_changed_byte_fails(tmp_path):
    identity, public = _age_identity(tmp_path)
    stored = tmp_path / "dump.sql.age"
    _encrypt(stored, public)
    raw = bytearray(stored.read_bytes())
    raw[-100] ^= 0x01
    stored.write_bytes(bytes(raw))
    with pytest.raises(crypto.CryptoError, match="does not decrypt"):
        _decrypt(stored, identity)


def test_a_reader_that_stops_early_is_not_told_how_the_rest_went(tmp_path):
    identity, public = _age_identity(tmp_path)
    stored = tmp_path / "archive.tar.age"
    _encrypt(stored, public)
    with stored.open("rb") as src, crypto.decrypted(src, crypto.identities(identity), "archive") as plain:
        assert plain.read(10) == DATA[:10]


@pytest.mark.parametrize("text", ["", " , ", "age1notakey", "ssh-ed25519 AAAAnotakey", "AGE-SECRET-KEY-1XYZ"])
def test_what_is_not_a_public_key_is_refused(text):
    with pytest.raises(crypto.CryptoError):
        crypto.recipients(text)


def test_recipients_are_comma_separated_age_and_ssh_keys(tmp_path):
    _, age = _age_identity(tmp_path)
    _, ssh = _ssh_identity(tmp_path)
    got = crypto.recipients(f" {age} ,{ssh},")
    assert [type(r) for r in got] == [pyrage.x25519.Recipient, pyrage.ssh.Recipient]


def test_an_identity_file_that_holds_no_identity_is_refused(tmp_path):
    bad = tmp_path / "key"
    bad.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64\n-----END OPENSSH PRIVATE KEY-----\n")
    bad.chmod(0o600)
    with pytest.raises(crypto.CryptoError, match=f"^{bad}: not a usable age or SSH identity"):
        crypto.identities(bad)
    empty = tmp_path / "empty"
    empty.write_text("# nothing here\n")
    empty.chmod(0o600)
    with pytest.raises(crypto.CryptoError, match=f"^{empty}: holds no age identity"):
        crypto.identities(empty)
