"""A set is read once, following no link (issue 24): what the signature covers is what is parsed and used.

Unit tests on a small set made here (one rack, an empty archive, no database); the attacks below are
plain file operations, never maasops code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from maasops import backupset, layouts, signing, verify
from maasops import manifest as mf
from maasops.backupset import LocalFiles

HOST = "rack1"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: dict) -> bytes:
    raw = json.dumps(data, indent=2).encode()
    path.write_bytes(raw)
    return raw


def make_set(root: Path, key: Path | None = None) -> Path:
    """A complete, valid set of one deb 3.5 rack whose archive is empty; signed with ``key`` when given."""
    set_dir = root / "lab" / "20260101T000000Z"
    (set_dir / HOST).mkdir(parents=True)
    tar = io.BytesIO()
    tarfile.open(fileobj=tar, mode="w").close()
    (set_dir / HOST / mf.ARCHIVE).write_bytes(tar.getvalue())
    lay = layouts.layout_for("deb", layouts.parse_version("1:3.5.3-1"))
    trees = lay.archived_trees({"rack"})
    archive = mf.Archive(mf.ARCHIVE, "none", len(tar.getvalue()), _sha(tar.getvalue()), None, None, trees, trees,
                         lay.cache_excludes, ())
    hm = mf.HostManifest(HOST, HOST, "deb", "1:3.5.3-1", lay.name, ("rack",), None, None, None,
                         "http://10.0.0.1:5240/MAAS", None, False, (), {}, archive)
    raw = _write(set_dir / HOST / mf.MANIFEST, hm.to_json())
    sm = mf.SetManifest("lab", "2026-01-01T00:00:00Z", True, mf.SetOptions(), {}, mf.DatabaseRecord(None, True),
                        {HOST: mf.HostEntry("ok", "", _sha(raw), {mf.ARCHIVE: archive.sha256})})
    _write(set_dir / mf.MANIFEST, sm.to_json())
    if key:
        signing.sign(set_dir / mf.MANIFEST, key)
    return set_dir


@pytest.fixture
def key(tmp_path) -> tuple[Path, Path]:
    """A signing key and the allowed_signers file that trusts it."""
    k = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)], check=True)
    signers = tmp_path / "allowed_signers"
    signers.write_text("tester " + " ".join(k.with_suffix(".pub").read_text().split()[:2]) + "\n")
    return k, signers


def _verify(set_dir: Path, signers: Path, trust_unsigned: bool = False) -> verify.SetCheck:
    return verify.verify_set(set_dir, verify.Policy(signers, trust_unsigned, database_elsewhere=True), 1)


def test_a_good_signed_set_verifies(tmp_path, key):
    sc = _verify(make_set(tmp_path, key[0]), key[1])
    assert sc.ok and sc.signer == "tester", sc.problem()


def test_the_manifest_swapped_after_the_signature_check_is_not_what_is_parsed(tmp_path, key, monkeypatch):
    set_dir = make_set(tmp_path, key[0])
    forged = json.loads((set_dir / mf.MANIFEST).read_text())
    forged["deployment"] = "forged"
    real = signing.check

    def check_then_swap(*args, **kwargs):  # the file changes between the signature check and the parse
        trust = real(*args, **kwargs)
        _write(set_dir / mf.MANIFEST, forged)
        return trust
    monkeypatch.setattr(signing, "check", check_then_swap)
    sc = _verify(set_dir, key[1])
    assert sc.records.set.deployment == "lab", "the parse read the manifest a second time"


def test_a_host_manifest_swapped_after_it_was_read_is_not_what_is_used(tmp_path, key, monkeypatch):
    set_dir = make_set(tmp_path, key[0])
    hpath = set_dir / HOST / mf.MANIFEST
    good = hpath.read_bytes()
    forged = json.loads(good)
    forged["maas_url"] = "http://evil/MAAS"
    real = mf.parse_host

    def parse_then_swap(*args, **kwargs):  # swapped once its bytes were read: a later hash sees the good bytes
        m = real(*args, **kwargs)
        _write(hpath, forged)
        return m
    monkeypatch.setattr(mf, "parse_host", parse_then_swap)
    records = mf.read_set(set_dir)
    assert records.hosts[HOST].maas_url == "http://10.0.0.1:5240/MAAS"
    assert records.host_sha256[HOST] == _sha(good)


@pytest.mark.parametrize("where", ["host manifest", "archive", "host directory", "signature", "set directory",
                                   "fifo manifest"])
def test_a_set_holding_a_symbolic_link_or_a_fifo_is_refused(tmp_path, key, where):
    good = make_set(tmp_path / "good", key[0])
    set_dir = make_set(tmp_path / "bad", key[0])
    if where == "host manifest":
        (set_dir / HOST / mf.MANIFEST).unlink()
        (set_dir / HOST / mf.MANIFEST).symlink_to(good / HOST / mf.MANIFEST)
    elif where == "archive":
        (set_dir / HOST / mf.ARCHIVE).unlink()
        (set_dir / HOST / mf.ARCHIVE).symlink_to(good / HOST / mf.ARCHIVE)
    elif where == "host directory":
        os.rename(set_dir / HOST, set_dir / "elsewhere")
        (set_dir / HOST).symlink_to("elsewhere")
    elif where == "signature":
        (set_dir / signing.SIGNATURE).unlink()
        (set_dir / signing.SIGNATURE).symlink_to(good / signing.SIGNATURE)
    elif where == "set directory":
        set_dir = tmp_path / "link"
        set_dir.symlink_to(good)
    else:
        (set_dir / mf.MANIFEST).unlink()
        os.mkfifo(set_dir / mf.MANIFEST)
    sc = _verify(set_dir, key[1])
    assert not sc.ok and sc.records is None
    said = sc.problem()
    assert ("symbolic link" in said or "not a regular file" in said), said
    with pytest.raises(mf.ManifestError):
        mf.read_set(set_dir)


def test_set_files_are_opened_following_no_link_on_the_way(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"x")
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "h").symlink_to(tmp_path / "real")
    (tmp_path / "set" / "l").symlink_to(tmp_path / "real" / "f")
    files = LocalFiles(tmp_path / "set")
    for rel in ("h/f", "l"):
        with pytest.raises(OSError, match="symbolic link"):
            files.open(rel)
        assert files.size(rel) is None or rel == "h/f"
    assert backupset.read_small(tmp_path / "real", "f", 10) == b"x"
    with pytest.raises(ValueError, match="larger than"):
        backupset.read_small(tmp_path / "real", "f", 0)
    assert LocalFiles(tmp_path / "real").send("f").files is not None  # an upload opens it the same way


def _unsigned(set_dir: Path, format_version: int | None) -> Path:
    """The set with its signature deleted, its manifests rewritten to ``format_version`` (None: format 1, which
    has no such field) and their checksums recomputed."""
    (set_dir / signing.SIGNATURE).unlink()
    hpath, spath = set_dir / HOST / mf.MANIFEST, set_dir / mf.MANIFEST
    hm, sm = json.loads(hpath.read_text()), json.loads(spath.read_text())
    for data in (hm, sm):
        data.pop("format_version")
        if format_version:
            data["format_version"] = format_version
    sm["hosts"][HOST]["manifest_sha256"] = _sha(_write(hpath, hm))
    _write(spath, sm)
    return set_dir


@pytest.mark.parametrize("fmt", [2, 3])
def test_a_later_format_set_whose_signature_was_deleted_is_refused_even_with_trust_unsigned(tmp_path, key, fmt):
    set_dir = _unsigned(make_set(tmp_path, key[0]), fmt)
    sc = _verify(set_dir, key[1], trust_unsigned=True)
    assert not sc.ok and "--trust-unsigned accepts only format 1 sets" in sc.problem()
    assert not any("UNSIGNED SET ACCEPTED" in n for n in sc.notes)


def test_a_format_1_set_is_accepted_unsigned_only_with_trust_unsigned(tmp_path, key):
    set_dir = _unsigned(make_set(tmp_path, key[0]), None)
    assert "the set is not signed" in _verify(set_dir, key[1]).problem()
    sc = _verify(set_dir, key[1], trust_unsigned=True)
    assert sc.ok and sc.records.set.format_version == 1 and signing.UNSIGNED_WARNING in sc.notes, sc.problem()


def test_a_host_manifests_database_record_is_typed_by_the_reader_and_written_as_the_probe_found_it():
    from dataclasses import asdict

    from maasops.parts import database
    from maasops.probe import DatabaseFacts, Space
    facts = DatabaseFacts("local", "/var/run/postgresql", 5432, "maasdb", "maas", True, 10 << 20,
                          "/var/lib/postgresql/16/main", Space(1 << 30, "/"), "localhost", ("local all all peer",))
    record = database.host_record(facts)
    assert record.data_space == Space(1 << 30, "/") and record.hba == ("local all all peer",)
    assert json.dumps(asdict(record)) == json.dumps(asdict(facts))  # the JSON on disk is what it was
    old = mf.host_database({"location": "remote", "host": "10.0.0.5", "port": 5432, "name": "maasdb",
                            "user": "maas"}, "database")  # written before listen_addresses and hba
    assert old.hba is None and old.listen_addresses is None and old.location == "remote"
    with pytest.raises(mf.ManifestError, match="hba must be a list of strings"):
        mf.host_database({"location": "local", "host": "", "port": 5432, "name": "maasdb", "user": "maas", "hba": [1]},
                         "database")
    with pytest.raises(mf.ManifestError, match="port is a str"):
        mf.host_database({"location": "local", "host": "", "port": "5432", "name": "maasdb", "user": "maas"},
                         "database")
