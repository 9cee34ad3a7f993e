"""A fleet: the controllers one command acts on, reached in parallel.

Targets come from ``fab -H`` (Fabric's own per-host Connections), from an
inventory, or from a lab's inventory. Work runs per host in a bounded thread
pool; one host failing never stops the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from fabric import Config, Connection

from maasops import connect, probe
from maasops.inventory import Deployment, InventoryError, InventoryHost
from maasops.secretfile import NotPrivate, private_file

PARALLEL = 8  # hosts worked on at once, unless --parallel says otherwise
SLICE = 0.2  # seconds the main thread waits at a time (Python runs signal handlers there only)
MAX_PARALLEL = 64  # the most --parallel takes: each host is an SSH session or two, and threads

T = TypeVar("T")


@dataclass
class Target:
    """One host to act on: its name, its (unopened, strict) Connection, what the inventory says."""

    name: str
    connection: Connection
    declared: InventoryHost | None = None


def from_connections(conns: list[Connection], accept_new_host_keys: bool = False,
                     gateway: str | None = None) -> list[Target]:
    """Targets from Connections Fabric built for ``-H``, made strict about host keys.

    ``gateway`` (a host as ``fab -H`` takes it) becomes every target's jump host.
    """
    if gateway:
        for c in conns:
            c.gateway = Connection(gateway, config=c.config)
    return [Target(c.original_host, connect.make_strict(c, accept_new_host_keys)) for c in conns]


def from_deployment(deployment: Deployment, config: Config, accept_new_host_keys: bool = False) -> list[Target]:
    """Targets for every host of an inventory, each with its own user/port/gateway/sudo password (InventoryError when
    a sudo password file is readable by others)."""
    if deployment.ssh_config:
        config = connect.with_ssh_config(config, deployment.ssh_config)
    targets = []
    for h in deployment.hosts:
        password = _sudo_password(deployment, h)
        c = connect.connection(h.address, config, user=h.user, port=h.port, gateway=h.gateway,
                               sudo_password=password, accept_new_host_keys=accept_new_host_keys)
        c.original_host = h.name
        targets.append(Target(h.name, c, h))
    return targets


def _sudo_password(deployment: Deployment, h: InventoryHost) -> str | None:
    """The host's sudo password, from its file (InventoryError when it cannot be read or others may read it)."""
    if not h.sudo_password_file:
        return None
    try:
        h.sudo_password_file.stat()  # a missing file is named as the inventory names it
        return private_file(h.sudo_password_file, f"{h.name}: sudo password file").read_text().strip()
    except NotPrivate as exc:
        raise InventoryError(f"{deployment.source}: hosts.{h.name}.sudo_password_file: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InventoryError(f"{deployment.source}: hosts.{h.name}.sudo_password_file {h.sudo_password_file}: "
                             f"cannot be read: {why}") from None


def each(targets: list[Target], fn: Callable[[Target], T], parallel: int = PARALLEL) -> dict[str, T | BaseException]:
    """Run ``fn`` for every target, at most ``parallel`` at once; exceptions are returned, not raised.

    Each runs on a daemon thread: on Ctrl-C or SIGTERM the connections are closed and the run ends at once, even
    while a host still holds a thread in its SSH handshake (a pool's threads would be waited for at exit). The
    main thread waits in slices: a signal the kernel gave another thread runs its handler at the next one."""
    results: dict[str, T | BaseException] = {}
    slots = threading.BoundedSemaphore(max(1, parallel))

    def guarded(t: Target) -> None:
        try:
            results[t.name] = fn(t)
        except Exception as exc:  # one host's failure is that host's result
            results[t.name] = exc
        finally:
            slots.release()
    threads = []
    try:
        for t in targets:
            while not slots.acquire(timeout=SLICE):
                pass
            threads.append(threading.Thread(target=guarded, args=(t,), name=f"maasops {t.name}", daemon=True))
            threads[-1].start()
        for thread in threads:
            while thread.is_alive():
                thread.join(SLICE)
    except BaseException:  # Ctrl-C, SIGTERM: a host still connecting must not hold the command up
        close_all([t.connection for t in targets])
        raise
    return {t.name: results[t.name] for t in targets}


def probe_all(targets: list[Target], parallel: int = PARALLEL) -> dict[str, probe.HostFacts | BaseException]:
    """Probe every target (read-only), at most ``parallel`` at once; a failure is that host's result."""
    return each(targets, lambda t: probe.probe(t.connection), parallel)


def close(c: Connection) -> None:
    """Close a Connection and every gateway hop behind it (Fabric closes only the first), also one still
    connecting (Fabric closes only an open one): its SSH handshake ends at once."""
    while isinstance(c, Connection):
        c.close()
        c.client.close()
        c = c.gateway


def close_all(conns: list[Connection]) -> None:
    """Close every connection (:func:`close`)."""
    for c in conns:
        close(c)


@contextmanager
def closing(targets: list[Target]) -> Iterator[list[Target]]:
    """The targets, every connection and jump tunnel closed at the end of the block, whatever happens."""
    try:
        yield targets
    finally:
        close_all([t.connection for t in targets])
