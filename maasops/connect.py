"""Fabric Connections the way maasops needs them: strict host keys, every hop.

Fabric accepts any host key (it installs paramiko's AutoAddPolicy and never
reads known_hosts) and ignores ``UserKnownHostsFile``. Here every Connection,
and every ProxyJump gateway Fabric builds for it, checks host keys as OpenSSH
would (:mod:`maasops.hostkeys`): against the known_hosts files the ssh config
names, refusing unknown, changed and revoked keys unless the caller explicitly
accepts new ones.
"""

from __future__ import annotations

from pathlib import Path

import paramiko
from fabric import Config, Connection

from maasops import hostkeys, jump


def _hops(c: Connection) -> list[Connection]:
    hops = []
    while isinstance(c, Connection):
        hops.append(c)
        c = c.gateway
    return hops


GCM_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
# Seconds to wait for a host: the TCP connection and then its SSH banner (-t/--connect-timeout, else this; a port
# that accepts TCP and never speaks SSH fails then), and for the login itself.
CONNECT_TIMEOUT = 15
AUTH_TIMEOUT = 30


# Rekey after this many bytes (or packets) each way, as OpenSSH does for 128-bit block ciphers (2^32 blocks of
# 16 bytes; ssh_config(5) RekeyLimit "default"). paramiko's own 2^29 bytes puts a key exchange inside every 512 MiB
# transfer, and one that meets the channel's close stalls paramiko's transport thread until "Key-exchange timed
# out waiting for key negotiation" (seen in make bench fetching 512 MiB through the bastion).
REKEY_BYTES = 2**36
REKEY_PACKETS = 2**31


class GcmFirstTransport(paramiko.Transport):
    """A Transport that offers AES-GCM first and rekeys when OpenSSH would.

    With paramiko, AES-GCM moves bulk data faster than its default AES-CTR + HMAC
    (benchmarks/transfer.py measures both: benchmarks/RESULTS.md, 3); every OpenSSH
    since 6.2 offers it, and the other ciphers stay in the list for servers that do not.
    """

    _preferred_ciphers = GCM_CIPHERS + tuple(
        c for c in paramiko.Transport._preferred_ciphers if c not in GCM_CIPHERS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.packetizer.REKEY_BYTES, self.packetizer.REKEY_PACKETS = REKEY_BYTES, REKEY_PACKETS


def make_strict(c: Connection, accept_new: bool = False) -> Connection:
    """Make ``c`` and each of its gateways check host keys against known_hosts (and prefer fast ciphers).

    A gateway OpenSSH can log in to is reached through ``ssh -W`` (:mod:`maasops.jump`),
    which checks its host key and every hop beyond it itself. Must be called before the
    connection opens. Returns ``c``.
    """
    for hop in _hops(c):
        hop.connect_kwargs.setdefault("transport_factory", GcmFirstTransport)
        if "timeout" not in hop.connect_kwargs:  # fab -t gives it there; Fabric refuses it in both places
            hop.connect_timeout = hop.connect_timeout or CONNECT_TIMEOUT
        hop.connect_kwargs.setdefault("banner_timeout", connect_timeout(hop))
        hop.connect_kwargs.setdefault("auth_timeout", AUTH_TIMEOUT)
        files = hostkeys.configured_files(hop.ssh_config)
        known = hostkeys.KnownHosts(files)
        known.install(hop.client)
        hop.client.set_missing_host_key_policy(hostkeys.AcceptNew(known, files[0]) if accept_new
                                               else hostkeys.RefuseUnknown(known))
        if jump.usable(hop.gateway):
            jump.via_openssh(hop, accept_new)
            break
    return c


def connect_timeout(c: Connection) -> float:
    """The seconds ``c`` waits for its host to connect and send its SSH banner."""
    return c.connect_kwargs.get("timeout") or c.connect_timeout or CONNECT_TIMEOUT


def connection(host: str, config: Config, *, user: str | None = None, port: int | None = None,
               gateway: str | None = None, sudo_password: str | None = None,
               accept_new_host_keys: bool = False) -> Connection:
    """A strict, not yet opened Connection to ``host`` with its own copy of ``config``.

    ``gateway`` is a jump host (like ``ssh -J``, maasops's ``--jump-host``); ``sudo_password``
    applies to this host only.
    """
    cfg = config.clone()
    if sudo_password is not None:
        cfg.sudo.password = sudo_password
    hop = Connection(gateway, config=cfg) if gateway else None
    kwargs = {"gateway": hop} if hop else {}
    c = Connection(host, user=user, port=port, config=cfg, **kwargs)
    return make_strict(c, accept_new=accept_new_host_keys)


def with_ssh_config(config: Config, ssh_config: Path) -> Config:
    """A copy of ``config`` that reads ``ssh_config`` only (like ``fab -S``)."""
    cfg = config.clone()
    # Clones share one SSHConfig object; give this one its own.
    cfg._set(base_ssh_config=paramiko.SSHConfig.from_path(str(ssh_config)))
    cfg.set_runtime_ssh_path(str(ssh_config))  # what `ssh -F` gets for a jump host
    return cfg


def fabric_config(ssh_config: Path | None = None, connect_timeout: int = CONNECT_TIMEOUT) -> Config:
    """A Fabric Config that reads ``ssh_config`` (or the user's and system's ssh config)."""
    overrides = {"timeouts": {"connect": connect_timeout}, "run": {"in_stream": False}}
    cfg = Config(runtime_ssh_path=str(ssh_config) if ssh_config else None, overrides=overrides)
    cfg.load_ssh_config()
    return cfg
