"""Jump hosts through OpenSSH: ``ssh -W host:port bastion`` as the target's socket.

Fabric reaches a target behind a gateway (``ProxyJump``, ``--gateway``, an
inventory's ``gateway:``) through a ``direct-tcpip`` channel of a second paramiko
session, so every byte is decrypted and re-encrypted in Python twice (benchmarks/transfer.py
measures that hop against this one: benchmarks/RESULTS.md, 3). Here the hop to
the bastion is OpenSSH's own stdio forwarding, the way ``ssh -J`` does it: one
``ssh -W`` process per target, talking to paramiko over a socketpair, so only the
target's session runs in Python.

The ``ssh`` process reads the same ssh config as Fabric (``-F`` when one was given),
logs in as the user and port Fabric resolved for the gateway, never prompts
(``BatchMode``), checks the bastion's host key strictly (or ``accept-new`` when asked)
and runs in its own session, so a Ctrl-C in the terminal reaches maasops (which then
restarts what it stopped) and not the tunnel it needs to do so. A gateway that needs
a password falls back to Fabric's paramiko hop.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
from typing import Any

import paramiko
from fabric import Connection
from fabric.connection import derive_shorthand

EXIT_WAIT = 5  # seconds to let ssh exit after the tunnel closed, before it is killed
STDERR_KEEP = 64 * 1024  # what ssh said, kept whole: its key warnings span many lines


class JumpFailed(paramiko.ProxyCommandFailure):
    """``ssh -W`` to the gateway exited with an error; ``stderr`` says why, in OpenSSH's words (all of it)."""

    def __init__(self, gateway: str, stderr: str):
        super().__init__(f"ssh -W via {gateway}", stderr)
        self.gateway, self.stderr = gateway, stderr

    @property
    def summary(self) -> str:
        """The last lines of what ssh said, as one line."""
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip() and not ln.startswith("@@@")]
        return " / ".join(lines[-3:])

    def __str__(self) -> str:
        return f"jump host {self.gateway}: {self.summary}"


class JumpSocket:
    """The laptop's end of a socketpair whose other end is ``ssh -W``'s stdin and stdout.

    Paramiko uses it as the target's socket. Closing it ends the ssh process and reaps it;
    an end of stream caused by ssh failing raises :class:`JumpFailed` with ssh's stderr.
    """

    def __init__(self, argv: list[str], gateway: str):
        self.gateway = gateway
        self._stderr_lock = threading.Lock()  # paramiko's thread reads stderr while another may close the tunnel
        self._sock, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=self._stderr,
                                            start_new_session=True)
        except OSError:
            self._sock.close()
            self._stderr.close()
            raise
        finally:
            theirs.close()

    def recv(self, size: int) -> bytes:
        """Bytes from the target; at end of stream, ssh's error if it failed."""
        try:
            data = self._sock.recv(size)
        except ConnectionError:  # BrokenPipeError and ConnectionResetError too
            self._raise_if_failed()
            raise
        if not data:
            self._raise_if_failed()
        return data

    def send(self, data: bytes) -> int:
        """Bytes to the target; if ssh is gone, its error."""
        try:
            return self._sock.send(data)
        except ConnectionError:  # BrokenPipeError and ConnectionResetError too
            self._raise_if_failed()
            raise

    def settimeout(self, timeout: float | None) -> None:
        """Like ``socket.settimeout`` (paramiko polls with short timeouts)."""
        self._sock.settimeout(timeout)

    def close(self) -> None:
        """Close the tunnel: ssh sees end of input and exits; it is killed if it lingers. Closing twice
        (paramiko's thread and ours, at once) is harmless."""
        self._sock.close()
        try:
            self.process.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with self._stderr_lock:
            self._stderr.close()

    @property
    def closed(self) -> bool:
        """True once the tunnel is closed (paramiko asks before it sends)."""
        return self._sock.fileno() == -1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _raise_if_failed(self) -> None:
        try:
            code = self.process.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            return
        if code != 0:
            with self._stderr_lock:
                if self._stderr.closed:
                    said = ""
                else:
                    self._stderr.seek(0)
                    said = self._stderr.read(STDERR_KEEP).decode(errors="replace").strip()
            raise JumpFailed(self.gateway, said or f"ssh exited {code}")


def ssh_config_path(c: Connection) -> str | None:
    """The ssh config file Fabric reads for ``c`` when it is not the default one (``fab -S``, an inventory's)."""
    return getattr(c.config, "_runtime_ssh_path", None) or c.config.get("ssh_config_path")


def jump_argv(gateway: Connection, host: str, port: int, accept_new: bool = False) -> list[str]:
    """The ``ssh -W`` command that forwards stdio to ``host:port`` through ``gateway``."""
    argv = ["ssh"]
    path = ssh_config_path(gateway)
    if path:
        argv += ["-F", path]
    elif not gateway.config.load_ssh_configs:
        argv += ["-F", "/dev/null"]
    argv += ["-o", "BatchMode=yes",
             "-o", f"StrictHostKeyChecking={'accept-new' if accept_new else 'yes'}",
             "-o", f"ConnectTimeout={gateway.config.timeouts.connect or 15}",
             "-o", "LogLevel=ERROR",
             "-l", gateway.user, "-p", str(gateway.port)]
    keys = gateway.connect_kwargs.get("key_filename") or []
    for key in [keys] if isinstance(keys, str) else keys:
        argv += ["-i", str(key)]
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return argv + ["-W", target, "--", alias(gateway)]


def alias(gateway: Connection) -> str:
    """The gateway's name as the user wrote it, without user@ and :port (what ssh config's ``Host`` matches)."""
    return derive_shorthand(gateway.original_host)["host"]


def usable(gateway: Any) -> bool:
    """True when ``gateway`` is a Fabric gateway Connection OpenSSH can log in to without a prompt."""
    return (isinstance(gateway, Connection) and shutil.which("ssh") is not None
            and not gateway.connect_kwargs.get("password") and not gateway.connect_kwargs.get("passphrase"))


def via_openssh(c: Connection, accept_new: bool = False) -> None:
    """Make ``c`` reach its gateway through ``ssh -W`` instead of a paramiko session (before it opens)."""
    gateway = c.gateway

    def open_gateway() -> JumpSocket:
        return JumpSocket(jump_argv(gateway, c.host, int(c.port), accept_new), alias(gateway))
    # Fabric's Connection.open() asks open_gateway() for the socket; this one is OpenSSH's.
    c.open_gateway = open_gateway
