"""What an attacker with write access to the laptop's backups/ can do to a set: tests use it to prove restore refuses.

``forge`` copies a set, lets a function rewrite one host's archive (tar members in, tar
members out), then recomputes everything a careless check would trust: the host's
listing, sizes and checksums, the set manifest's records, and (when given a key) the
signature.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import zstandard

from maasops import backupset, compression, signing
from maasops import manifest as mf
from maasops.parts import database

Members = list[tuple[tarfile.TarInfo, bytes | None]]


def members(archive: Path, codec: str) -> Members:
    """Every member of an archive compressed as ``codec`` with its bytes (files) or None."""
    out = []
    with open(archive, "rb") as raw, tarfile.open(fileobj=compression.reader(raw, codec), mode="r|") as tar:
        for m in tar:
            out.append((m, tar.extractfile(m).read() if m.isfile() else None))
    return out


def write(archive: Path, items: Members, codec: str) -> None:
    """Write members back as an archive compressed as ``codec``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in items:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    packed = {"gzip": lambda b: gzip.compress(b, 1), "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
              "none": lambda b: b}[codec]
    archive.write_bytes(packed(raw.getvalue()))


def info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, size: int = 0, link: str = "",
         owner: str = "root") -> tarfile.TarInfo:
    """A member header as an attacker writes it."""
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.size, t.linkname = kind, mode, size, link
    t.uname = t.gname = owner
    return t


def forge(src: Path, dest: Path, host: str, edit: Callable[[Members], Members], *, listing: bool = True,
          sign_with: Path | None = None, part: str = "archive") -> Path:
    """A copy of set ``src`` at ``dest`` whose ``host`` archive (``part="dump"``: its directory dump's tar)
    ``edit`` rewrote, recomputed to look intact.

    ``listing`` False leaves the manifest's listing as it was (the archive alone is forged);
    ``sign_with`` signs the forged set manifest with that key, else the signature is removed.
    """
    shutil.copytree(src, dest)
    hdir = dest / host
    hm = json.loads((hdir / mf.MANIFEST).read_text())
    tar, codec = hdir / hm[part]["file"], hm[part]["compression"]
    write(tar, edit(members(tar, codec)), codec)
    with open(tar, "rb") as f:
        if part == "archive":
            files, sha, size = backupset.read_archive(f, codec)
            if listing:
                hm["archive"]["files"] = files
        else:
            _, sha, size, plain = database.read_directory(f, codec)
            hm["dump"]["uncompressed_size"] = plain
    hm[part].update(sha256=sha, size=size)
    backupset.write_json(hdir / mf.MANIFEST, hm)
    sm = json.loads((dest / mf.MANIFEST).read_text())
    entry = sm["hosts"][host]
    entry["manifest_sha256"] = backupset.file_sha256(hdir / mf.MANIFEST)
    entry["files"][hm[part]["file"]] = sha
    backupset.write_json(dest / mf.MANIFEST, sm)
    (dest / signing.SIGNATURE).unlink(missing_ok=True)
    if sign_with:
        signing.sign(dest / mf.MANIFEST, sign_with)
    return dest
