"""Fetch one file from a lab host by one method (run as its own process, so its peak memory is its own).

    python -m benchmarks.fetch_one LAB_DIR HOST REMOTE_PATH DEST METHOD
METHOD: stream (maasops's raw exec channel, as maasops connects: ``ssh -W`` hop, AES-GCM first)
| stream-ctr (the same, with paramiko's default cipher order: AES-CTR + HMAC)
| stream-paramiko-hop (the same, through Fabric's own paramiko gateway session instead of ``ssh -W``)
| sftp (paramiko get, prefetch on) | sftp-noprefetch
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import paramiko

from maasops import connect, stream
from maasops.lab import lab as lab_mod


class CtrFirstTransport(connect.GcmFirstTransport):
    """maasops's transport with paramiko's default cipher order (AES-CTR + HMAC first): only the cipher differs."""

    _preferred_ciphers = paramiko.Transport._preferred_ciphers


def main(lab_dir: str, host: str, remote_path: str, dest: str, method: str) -> None:
    """Fetch ``remote_path`` from ``host`` into ``dest`` by ``method``."""
    the_lab = lab_mod.Lab.load(lab_dir)
    cfg = connect.with_ssh_config(connect.fabric_config(), the_lab.ssh_config)
    c = connect.connection(host, cfg)
    if method == "stream-ctr":
        c.connect_kwargs["transport_factory"] = CtrFirstTransport
    if method == "stream-paramiko-hop":
        del c.open_gateway  # back to Fabric's direct-tcpip channel through a paramiko session to the bastion
        connect.make_strict(c.gateway)
    if method.startswith("stream"):
        stream.download(c, f"cat {shlex.quote(remote_path)}", Path(dest), "fetch")
    else:
        c.open()
        sftp = c.client.open_sftp()
        sftp.get(remote_path, dest, prefetch=method == "sftp")
    c.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
