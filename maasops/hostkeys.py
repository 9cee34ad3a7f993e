"""Host keys the way OpenSSH checks them: known_hosts files, @revoked keys, accept-new that records where ssh would.

Fabric accepts any host key (it installs paramiko's AutoAddPolicy and never reads
known_hosts). maasops loads the files the ssh config names in
``UserKnownHostsFile`` (else ``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts``)
itself, so that lines paramiko cannot read (``@cert-authority``, ``@revoked``,
garbled ones) are handled instead of crashing: a ``@revoked`` key is refused,
never trusted; certificate authorities are not used (paramiko checks no host
certificates), so such a host is "unknown". With ``--accept-new-host-keys`` an
unknown key is recorded like ``StrictHostKeyChecking=accept-new`` does: in the
first ``UserKnownHostsFile`` (created 0600, whatever the umask), and never when
the host already has a recorded key of any type.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry

from maasops.errors import HostKeyRefused

DEFAULT_FILES = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")


class KnownHosts:
    """What a set of known_hosts files vouch for, and which keys they revoke."""

    def __init__(self, files: list[Path]):
        self.files = files
        self.keys = paramiko.HostKeys()
        self.revoked: set[tuple[str, str]] = set()  # (key type, base64)
        for path in files:
            if path.is_file():
                self._load(path)

    def _load(self, path: Path) -> None:
        for raw in path.read_text(errors="replace").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("@"):
                marker, _, rest = line.partition(" ")
                words = rest.split()
                if marker == "@revoked" and len(words) >= 3:
                    self.revoked.add((words[1], words[2]))
                continue  # @cert-authority: paramiko checks no host certificates
            try:
                entry = HostKeyEntry.from_line(line)
            except Exception:  # a line OpenSSH would skip with a warning; so do we
                continue
            if entry is not None and entry.key is not None:
                for name in entry.hostnames:
                    self.keys.add(name, entry.key.get_name(), entry.key)

    def is_revoked(self, key: paramiko.PKey) -> bool:
        """True when a @revoked line names this key."""
        return (key.get_name(), key.get_base64()) in self.revoked

    def install(self, client: paramiko.SSHClient) -> None:
        """Give ``client`` the keys these files vouch for (a revoked key never counts as known)."""
        for name, by_type in self.keys.items():
            for kind, key in by_type.items():
                if not self.is_revoked(key):
                    client.get_host_keys().add(name, kind, key)


class RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """StrictHostKeyChecking=yes: an unknown key is refused; one that is revoked, said so."""

    def __init__(self, known: KnownHosts):
        self.known = known

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        """Refuse: unknown, changed (the host has a key of another type) or revoked."""
        raise HostKeyRefused(hostname, _why(self.known, hostname, key) or "unknown")


class AcceptNew(paramiko.MissingHostKeyPolicy):
    """StrictHostKeyChecking=accept-new: record a key for a host that has none, refuse anything else."""

    def __init__(self, known: KnownHosts, known_hosts_file: Path):
        self.known, self.known_hosts_file = known, known_hosts_file

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        """Accept and record ``key`` when ``hostname`` has no recorded key at all and the key is not revoked."""
        why = _why(self.known, hostname, key)
        if why:
            raise HostKeyRefused(hostname, why)
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known.keys.add(hostname, key.get_name(), key)
        remember_key(self.known_hosts_file, hostname, key)


def _why(known: KnownHosts, hostname: str, key: paramiko.PKey) -> str | None:
    if known.is_revoked(key):
        return "revoked"
    if known.keys.lookup(hostname):
        return "changed"  # OpenSSH: the host has a key, of another type: never a new host
    return None


def remember_key(path: Path, hostname: str, key: paramiko.PKey) -> None:
    """Append ``hostname``'s key to ``path``, creating it (and its directory) private whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        if os.fstat(fd).st_size == 0:
            os.fchmod(fd, 0o600)
        line = f"{hostname} {key.get_name()} {base64.b64encode(key.asbytes()).decode()}\n"
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def configured_files(ssh_config: dict) -> list[Path]:
    """The known_hosts files an ssh config names for a host (UserKnownHostsFile), or OpenSSH's defaults."""
    named = ssh_config.get("userknownhostsfile")
    if isinstance(named, str):
        named = named.split()
    return [Path(os.path.expanduser(p)) for p in (named or DEFAULT_FILES)]
