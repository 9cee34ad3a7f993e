"""Signed sets, with OpenSSH's own signatures: who made a set, and that not one byte changed since.

A backup signs the set manifest (``ssh-keygen -Y sign -n maasops``) with an SSH key
the operator already has (a private key file, or a public key whose private half is
in ssh-agent). The set manifest holds the sha256 of every host manifest and every
file, and each host manifest the sha256 of its archive's members, so the one
signature covers every byte of the set.

``verify`` and ``restore`` check the signature against an ``allowed_signers`` file
in OpenSSH's format (``principal key-type base64``): ``--allowed-signers FILE``,
else the inventory's ``allowed_signers``, else ``~/.config/maasops/allowed_signers``.
A set that is unsigned, signed by a key that file does not list, or changed after
signing is refused; ``--trust-unsigned`` accepts one that is unsigned only when it
is from before signing (format 1) and says so loudly: a format 2 or later set
without its signature had it removed, and is refused all the same.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from maasops import backupset

NAMESPACE = "maasops"
SIGNATURE = "manifest.json.sig"
DEFAULT_KEYS = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
KEYGEN_TIMEOUT = 30
FINGERPRINT = re.compile(r"(SHA256:[A-Za-z0-9+/=]+)")
MAX_SIGNATURE = 64 * 1024  # an SSH signature is a few hundred bytes
STRIPPED = ("the set is not signed, and it is not from before signing (its manifests are format 2 or later, which a "
            "backup always signs): its signature was removed. --trust-unsigned accepts only format 1 sets; do not "
            "restore this one")
UNSIGNED_WARNING = ("UNSIGNED SET ACCEPTED (--trust-unsigned): nothing proves who made it or that its files "
                    "are the ones backed up; restore it only if you know where it has been")


class SigningError(ValueError):
    """The set cannot be signed, or its signature cannot be trusted; the message says why and the fix."""


def default_allowed_signers() -> Path:
    """``$XDG_CONFIG_HOME/maasops/allowed_signers`` (``~/.config/maasops/allowed_signers``)."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "maasops" / "allowed_signers"


def signing_key(given: Path | None) -> Path:
    """The key that signs: the one given (option or inventory), else the user's first default SSH key."""
    if given is not None:
        path = Path(os.path.expanduser(str(given)))
        if not path.exists():
            raise SigningError(f"signing key {path} does not exist (give --sign-key, or the inventory's signing_key)")
        return path
    for candidate in DEFAULT_KEYS:
        path = Path(os.path.expanduser(candidate))
        if path.exists():
            return path
    raise SigningError("no SSH key to sign the set with: create one (ssh-keygen -t ed25519), or give --sign-key "
                       "(or signing_key in the inventory's defaults)")


def _keygen(args: list[str], data: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["ssh-keygen", *args], input=data, capture_output=True, timeout=KEYGEN_TIMEOUT,
                              stdin=None if data is not None else subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SigningError(f"ssh-keygen failed: {exc}") from None


def _said(proc: subprocess.CompletedProcess) -> str:
    return (proc.stderr or proc.stdout or b"").decode(errors="replace").strip().replace("\n", " / ")


def sign(path: Path, key: Path) -> Path:
    """Sign ``path`` with ``key`` (``path``.sig, 0600); SigningError naming the key when OpenSSH cannot."""
    proc = _keygen(["-Y", "sign", "-q", "-f", str(key), "-n", NAMESPACE, str(path)])
    sig = path.with_name(path.name + ".sig")
    if proc.returncode != 0 or not sig.exists():
        raise SigningError(f"signing with {key} failed: {_said(proc) or 'ssh-keygen exit ' + str(proc.returncode)} "
                           "(a key with a passphrase must be in ssh-agent: give its .pub as --sign-key)")
    sig.chmod(0o600)
    return sig


def can_sign(key: Path) -> None:
    """Sign a scrap of data with ``key`` now, so that a backup never stops MAAS only to fail at the end."""
    with tempfile.TemporaryDirectory(prefix="maasops-sign-") as d:
        probe = Path(d) / "probe"
        probe.write_text("maasops\n")
        sign(probe, key)


@dataclass(frozen=True)
class Trust:
    """Who signed a set, or why it cannot be trusted (``problem``), or the warning that it was accepted unsigned."""

    signer: str | None = None
    problem: str | None = None
    warning: str | None = None


def check(set_dir: Path, data: bytes, allowed_signers: Path, trust_unsigned: bool = False,
          predates_signing: bool = False) -> Trust:
    """Check the signature of the set manifest's bytes ``data`` (read once: what is then parsed) against
    ``allowed_signers`` (OpenSSH's format). The signature is read once too, following no link, and ssh-keygen gets
    both from this process, never from the set's directory. An unsigned set is accepted with ``trust_unsigned``
    only when it ``predates_signing`` (format 1): a later set without its signature had it removed."""
    try:
        sig = backupset.read_small(set_dir, SIGNATURE, MAX_SIGNATURE)
    except FileNotFoundError:
        sig = None
    except (OSError, ValueError) as exc:
        return Trust(problem=f"{SIGNATURE} cannot be read: {getattr(exc, 'strerror', None) or exc}")
    if sig is None:
        if trust_unsigned and predates_signing:
            return Trust(warning=UNSIGNED_WARNING)
        if trust_unsigned:
            return Trust(problem=STRIPPED)
        return Trust(problem="the set is not signed: nothing proves who made it (sign new sets with a key in "
                             f"{allowed_signers}; for a set from before signing, --trust-unsigned)")
    if not allowed_signers.is_file():
        return Trust(problem=f"no allowed_signers file at {allowed_signers}: put the public keys you trust to sign "
                             "sets there (one line each: name key-type base64), or give --allowed-signers FILE")
    with tempfile.TemporaryDirectory(prefix="maasops-sig-") as d:
        sig_file = Path(d) / SIGNATURE
        sig_file.write_bytes(sig)
        return _verify(data, sig_file, allowed_signers)


def _verify(data: bytes, sig: Path, allowed_signers: Path) -> Trust:
    found = _keygen(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)])
    principals = found.stdout.decode(errors="replace").split() if found.returncode == 0 else []
    if not principals:
        key = _keygen(["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)], data)
        who = FINGERPRINT.search(_said(key))
        return Trust(problem=f"the set is signed by key {who.group(1) if who else '(unreadable signature)'}, which "
                             f"{allowed_signers} does not list: if you trust that key, add it there; otherwise do "
                             "not restore this set")
    principal = principals[0]
    ok = _keygen(["-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE, "-s", str(sig)], data)
    if ok.returncode != 0:
        return Trust(problem=f"the set manifest is not what {principal} signed: it was changed after the backup "
                             "(do not restore from it)")
    return Trust(signer=principal)
