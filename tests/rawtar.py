"""Tar archives byte by byte, as an attacker writes them, and sets re-forged with them (issue 24).

Nothing here uses maasops: the headers are laid out by hand (ustar/GNU field offsets),
the set's checksums recomputed with hashlib and the manifest re-signed with ``ssh-keygen``
itself, so a forgery cannot inherit a blind spot of the code it attacks.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import zstandard

GNU = b"ustar  \0"
POSIX = b"ustar\x0000"
ZERO_BLOCKS = b"\0" * 1024


def _octal(n: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, n)


def header(name: str, flag: bytes = b"0", size: int = 0, mode: int = 0o644, link: str = "", owner: str = "root",
           devmajor: bytes | None = None, magic: bytes = GNU) -> bytes:
    """One 512-byte header with a right checksum; ``devmajor`` the raw field (default: octal zero)."""
    h = bytearray(512)
    h[0:100] = name.encode().ljust(100, b"\0")[:100]
    h[100:108] = _octal(mode, 8)
    h[108:116] = h[116:124] = _octal(0, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(1700000000, 12)
    h[156:157] = flag
    h[157:257] = link.encode().ljust(100, b"\0")[:100]
    h[257:265] = magic
    h[265:297] = h[297:329] = owner.encode().ljust(32, b"\0")
    h[329:337] = devmajor if devmajor is not None else _octal(0, 8)
    h[337:345] = _octal(0, 8)
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def pad(data: bytes) -> bytes:
    """``data`` padded with zeros to whole blocks."""
    return data + b"\0" * (-len(data) % 512)


def member(name: str, data: bytes = b"", flag: bytes = b"0", **kw) -> bytes:
    """A member: its header (after GNU long-name headers for a name or link target of 100 bytes or more) and its
    data, padded."""
    longs = b"".join(header("././@LongLink", kind, len(text) + 1) + pad(text.encode() + b"\0")
                     for kind, text in ((b"L", name), (b"K", kw.get("link", ""))) if len(text) >= 100)
    return longs + header(name, flag, len(data) if flag == b"0" else 0, **kw) + (pad(data) if flag == b"0" else b"")


def pax(records: list[tuple[str, str]]) -> bytes:
    """A pax extended header ('x') holding ``records`` in that order."""
    body = b""
    for key, value in records:
        rec = f" {key}={value}\n".encode()
        n = len(rec) + 1
        while len(str(n)) + len(rec) != n:
            n += 1
        body += str(n).encode() + rec
    return header("././@PaxHeader", b"x", len(body)) + pad(body)


def members(tar: bytes) -> list[tuple[str, bytes]]:
    """The members of an uncompressed GNU-format tar as (name, raw bytes with their long-name headers), without
    its end; stops at the first zero block."""
    out, at, pending, name = [], 0, b"", None
    while at + 512 <= len(tar) and tar[at:at + 512] != b"\0" * 512:
        h = tar[at:at + 512]
        size = int(h[124:136].strip(b"\0 ") or b"0", 8)
        whole = 512 + size + (-size % 512)
        if h[156:157] == b"L":
            name = tar[at + 512:at + 512 + size].split(b"\0")[0].decode()
        pending += tar[at:at + whole]
        at += whole
        if h[156:157] not in (b"L", b"K", b"x"):
            out.append((name or h[:100].split(b"\0")[0].decode().rstrip("/"), pending))
            pending, name = b"", None
    return out


def _unpack(data: bytes, codec: str) -> bytes:
    if codec == "gzip":
        return gzip.decompress(data)
    if codec == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def _pack(data: bytes, codec: str) -> bytes:
    return {"gzip": lambda b: gzip.compress(b, 1), "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
            "none": lambda b: b}[codec](data)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
    os.chmod(path, 0o600)


def listed(name: str, data: bytes = b"", kind: str = "file", mode: int = 0o644, link: str = "") -> dict:
    """A host manifest's listing entry for a member this module wrote (root-owned)."""
    entry = {"path": "/" + name, "type": kind, "mode": f"{mode:04o}", "uid": 0, "gid": 0, "user": "root",
             "group": "root"}
    if kind == "file":
        entry.update(size=len(data), sha256=_sha(data))
    elif link:
        entry["link"] = link
    return entry


def reforge(src: Path, dest: Path, host: str, edit: Callable[[list[tuple[str, bytes]]], bytes], *,
            listing: Callable[[list[dict]], list[dict]] | None = None, sign_with: Path | None = None) -> Path:
    """A copy of set ``src`` at ``dest`` whose ``host`` config archive is ``edit(members)`` (raw tar bytes, end
    included) with the manifests' checksums fixed, ``listing`` applied to the host's listing, and the set manifest
    signed with ``sign_with`` (as a compromised controller's output is signed by the laptop that took it)."""
    shutil.copytree(src, dest)
    hdir = dest / host
    hm = json.loads((hdir / "manifest.json").read_text())
    arch = hm["archive"]
    path = hdir / arch["file"]
    packed = _pack(edit(members(_unpack(path.read_bytes(), arch["compression"]))), arch["compression"])
    path.write_bytes(packed)
    arch.update(sha256=_sha(packed), size=len(packed))
    if listing:
        arch["files"] = listing(arch["files"])
    _write_json(hdir / "manifest.json", hm)
    sm = json.loads((dest / "manifest.json").read_text())
    sm["hosts"][host]["manifest_sha256"] = _sha((hdir / "manifest.json").read_bytes())
    sm["hosts"][host]["files"][arch["file"]] = arch["sha256"]
    _write_json(dest / "manifest.json", sm)
    (dest / "manifest.json.sig").unlink(missing_ok=True)
    if sign_with:
        subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", str(sign_with), "-n", "maasops",
                        str(dest / "manifest.json")], check=True, capture_output=True)
    return dest


# The first members of a config tree: etc/maas and its rackd.conf.
BASE = member("etc/maas", flag=b"5", mode=0o755) + member("etc/maas/rackd.conf", b"maas_url: x\n")
