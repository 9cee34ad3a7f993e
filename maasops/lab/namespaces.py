"""Linux namespaces for lab hosts: a network namespace on a lab bridge, and a
persistent mount + UTS namespace whose /etc, /var and /usr are overlays.

Everything here runs locally as root. Nothing is global: each function takes
the names and paths it acts on.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

OVERLAID = ("/etc", "/var", "/usr")  # lower = the machine's own, upper = the host's
BOUND = ("/home", "/snap")  # the host's own directory, bound over the real path
RUN_DIRS = (
    ("/run/sshd", "root:root", "0755"),
    ("/run/postgresql", "postgres:postgres", "2775"),
    ("/run/lock", "root:root", "1777"),
    ("/run/maas-lab/units", "root:root", "0755"),
)


def sh(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a local command, capture its output, raise with its stderr on failure."""
    proc = subprocess.run(args, input=input, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def create_bridge(bridge: str, gateway_cidr: str) -> None:
    """Create the lab bridge on this machine with the lab's own gateway address."""
    sh("ip", "link", "add", bridge, "type", "bridge")
    sh("ip", "addr", "add", gateway_cidr, "dev", bridge)
    sh("ip", "link", "set", bridge, "up")


def create_netns(netns: str, bridge: str, veth: str, address_cidr: str) -> None:
    """Create a network namespace with loopback and one veth on ``bridge`` (no default route)."""
    sh("ip", "netns", "add", netns)
    sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
    sh("ip", "link", "set", veth, "master", bridge, "up")
    for args in (("addr", "add", address_cidr, "dev", "eth0"), ("link", "set", "eth0", "up"),
                 ("link", "set", "lo", "up")):
        sh("ip", "-n", netns, *args)


def prepare_ns_dir(ns_dir: Path) -> None:
    """Make ``ns_dir`` a private bind mount, as persistent mount namespaces need."""
    ns_dir.mkdir(parents=True, exist_ok=True)
    if not is_mountpoint(ns_dir):
        sh("mount", "--bind", str(ns_dir), str(ns_dir))
        sh("mount", "--make-private", str(ns_dir))


def is_mountpoint(path: Path) -> bool:
    """True when ``path`` is a mount point in this machine's mount namespace."""
    return any(line.split()[4] == str(path) for line in Path("/proc/self/mountinfo").read_text().splitlines())


def create_mountns(netns: str, mnt: Path, uts: Path, hostname: str, fs: Path, work: Path,
                   read_only: list[str]) -> None:
    """Create the host's persistent mount and UTS namespaces and mount its file tree.

    ``fs`` holds the host's upper/bound directories named after the real paths
    (``fs/etc``, ``fs/home`` ...); ``read_only`` paths are re-mounted read-only.
    """
    mnt.touch()
    uts.touch()
    lines = ["set -e"]
    for path in OVERLAID:
        name = path.strip("/")
        (work / name).mkdir(parents=True, exist_ok=True)
        lines.append(f"mount -t overlay overlay -o lowerdir={path},upperdir={fs / name},"
                     f"workdir={work / name} {path}")
    for path in BOUND:
        lines.append(f"mount --bind {shlex.quote(str(fs / path.strip('/')))} {path}")
    for path in read_only:
        lines += [f"mount --bind {shlex.quote(path)} {shlex.quote(path)}",
                  f"mount -o remount,bind,ro {shlex.quote(path)}"]
    lines.append("mount -t tmpfs -o mode=0755,size=64m tmpfs /run")
    for path, owner, mode in RUN_DIRS:
        lines.append(f"mkdir -p {path} && chown {owner} {path} && chmod {mode} {path}")
    lines.append(f"hostname {shlex.quote(hostname)}")
    lines.append(f"umount -l {shlex.quote(str(mnt.parent))}")
    # Last: a private /tmp hides the lab's own directory when that lives in /tmp.
    lines.append(f"mount --bind {shlex.quote(str(fs / 'tmp'))} /tmp")
    sh("nsenter", f"--net=/run/netns/{netns}", "unshare", f"--mount={mnt}", f"--uts={uts}",
       "--propagation", "private", "sh", "-c", "\n".join(lines))


def enter(netns: str, mnt: Path, uts: Path) -> list[str]:
    """The command prefix that runs a command inside a host's namespaces."""
    return ["nsenter", f"--net=/run/netns/{netns}", f"--mount={mnt}", f"--uts={uts}", "--wd=/", "--"]


def ns_inode(path: Path) -> int | None:
    """The inode of a namespace file, or None when it is gone."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_in(netns: str, mnt: Path) -> list[int]:
    """PIDs of every process living in the host's network or mount namespace."""
    targets = {("net", ns_inode(Path("/run/netns") / netns)), ("mnt", ns_inode(mnt))}
    targets = {t for t in targets if t[1] is not None}
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        for kind, ino in targets:
            try:
                if os.stat(entry / "ns" / kind).st_ino == ino:
                    pids.append(int(entry.name))
                    break
            except OSError:
                break
    return pids


def kill_all(pids_fn, grace: float = 5.0) -> None:
    """SIGTERM every process ``pids_fn()`` lists, then SIGKILL what remains after ``grace``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids_fn():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while pids_fn() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pids_fn():
            return
    if pids_fn():
        raise RuntimeError(f"processes survived SIGKILL: {pids_fn()}")


def destroy(netns: str, mnt: Path, uts: Path) -> None:
    """Remove a host's namespaces (its processes must be gone first)."""
    for path in (mnt, uts):
        if path.exists() and is_mountpoint(path):
            sh("umount", str(path))
    if Path("/run/netns", netns).exists():
        sh("ip", "netns", "del", netns)
