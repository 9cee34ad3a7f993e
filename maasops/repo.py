"""A restic repository, driven through restic's own command line (Debian's ``restic`` package).

maasops never implements a store of its own: restic chunks, deduplicates,
compresses (repository format 2, zstd), encrypts and checks. This module only
runs ``restic`` with the repository's location and the fleet's SSH settings:

- the password comes only from a file (``--repo-password-file`` or
  ``RESTIC_PASSWORD_FILE``), never from a command line or an environment value;
- an ``sftp:`` repository is reached with the same ssh_config (and so the same
  known_hosts and strict host key checking) as the fleet, in batch mode;
- restic runs with ``TZ=UTC``: ``--time`` and the keep-daily/weekly buckets are UTC.

:class:`SnapshotSink` is a download's sink that streams bytes into
``restic backup --stdin`` (a snapshot is made only when it is closed, never when
it is aborted); :func:`dump` streams a file of a snapshot out (``restic dump``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO

from maasops import pipes
from maasops.connect import GCM_CIPHERS
from maasops.secretfile import NotPrivate, private_file

RESTIC = "restic"
MIN_VERSION = (0, 14)  # repository format 2 (compression) came with restic 0.14
FORMAT = 2
TIMEOUT = 900  # seconds for a command that moves no set data (listing, tagging, forgetting)
ABORT_WAIT = 30  # seconds restic gets to stop after SIGINT before it is killed
STDERR_KEEP = 4096
PARALLEL_DUMP = (0, 17)  # restic 0.17's dump loads a file's blobs in parallel (restic#3406); before, one after another
# MiB read ahead of a restore's upload: before 0.17, so that restic loads the next blobs while the last ones go up to
# the host; from 0.17 restic reads ahead itself, and a short buffer only evens out the pipe (memory bounded by it).
AHEAD_BLOCKS = {False: 64, True: 8}
STDIN_NO_DIRS = ((0, 18, 0),)  # backup --stdin-filename with a "/" fails (restic#5324, fixed in 0.18.1)
NAME = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
SFTP_SCP = re.compile(rf"^sftp:(?:(?P<user>{NAME})@)?(?P<host>{NAME}):(?P<path>.+)$")
SFTP_URL = re.compile(rf"^sftp://(?:(?P<user>{NAME})@)?(?P<host>{NAME})(?::(?P<port>\d{{1,5}}))?/(?P<path>.*)$")
PASSWORD_VARIABLES = ("RESTIC_PASSWORD", "RESTIC_PASSWORD_COMMAND", "RESTIC_PASSWORD_FILE", "RESTIC_REPOSITORY",
                      "RESTIC_REPOSITORY_FILE")
NO_REPOSITORY = "Is there a repository at the following location?"
TAG = "maasops"  # every snapshot maasops makes carries it
INSTALL_HINT = "install restic (apt-get install restic; tools/install-system-deps.sh does)"


class RepoError(OSError):
    """restic cannot be used, or a restic command failed; the message says what restic said.

    An OSError: to a download or a verify, a repository that fails is storage that failed.
    """

    hint = "check the repository (maasops check --repo), the space where it lives and the way to it"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "restic failed"


@dataclass(frozen=True)
class Repo:
    """A restic repository: where it is, the file holding its password, how SSH reaches it (sftp:)."""

    location: str
    password_file: Path
    ssh_config: Path | None = None
    accept_new_host_keys: bool = False

    def __str__(self) -> str:
        return self.location

    def command(self, *args: str) -> list[str]:
        """The restic command line for ``args`` on this repository (no secret is on it)."""
        return [RESTIC, "--repo", self.location, *self._sftp_option(), *args]

    def env(self) -> dict[str, str]:
        """restic's environment: the password file, UTC, and no other password or repository source."""
        env = {k: v for k, v in os.environ.items() if k not in PASSWORD_VARIABLES}
        return {**env, "RESTIC_PASSWORD_FILE": str(self.password_file), "TZ": "UTC"}

    def _sftp_option(self) -> list[str]:
        m = SFTP_SCP.match(self.location) or SFTP_URL.match(self.location)
        if not self.location.startswith("sftp:"):
            return []
        if not m:
            raise RepoError(f"--repo {self.location[:80]!r}: an sftp repository is sftp:[user@]host:/path or "
                            "sftp://[user@]host[:port]/path (host and user: letters, digits and ._-)")
        ssh = ["ssh", "-o", "BatchMode=yes"]
        if self.ssh_config:
            ssh += ["-F", str(self.ssh_config)]
        if self.accept_new_host_keys:
            ssh += ["-o", "StrictHostKeyChecking=accept-new"]
        if m.groupdict().get("port"):
            ssh += ["-p", m.group("port")]
        if m.group("user"):
            ssh += ["-l", m.group("user")]
        ssh += gcm_first(ssh, m.group("host"))
        return ["-o", "sftp.command=" + shlex.join([*ssh, m.group("host"), "-s", "sftp"])]


GCM = GCM_CIPHERS[0]  # as the fleet's own connections prefer it: fast where the CPU has AES


@cache
def _ciphers(ssh: tuple[str, ...], host: str) -> str:
    try:
        out = subprocess.run([*ssh, "-G", host], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return next((ln.split(None, 1)[1] for ln in out.splitlines() if ln.startswith("ciphers ")), "")


def gcm_first(ssh: list[str], host: str) -> list[str]:
    """``-o Ciphers=^aes128-gcm@openssh.com`` (ssh offers it first) when the user's ssh_config leaves the
    ciphers at OpenSSH's defaults, which hold it; nothing when it chooses them (its choice stands).

    restic 0.14 splits ``-o`` values at commas, so a list cannot be passed; ``^`` reorders the defaults.
    """
    chosen = _ciphers(tuple(ssh), host)
    defaults = _ciphers(("ssh", "-F", "/dev/null"), host)
    return ["-o", f"Ciphers=^{GCM}"] if chosen and chosen == defaults and GCM in chosen.split(",") else []


def password_file(given: str | Path | None) -> Path:
    """The repository's password file: the one given, else ``RESTIC_PASSWORD_FILE``; readable by its owner only."""
    name = str(given) if given else os.environ.get("RESTIC_PASSWORD_FILE")
    if not name:
        raise RepoError("the repository's password: give --repo-password-file FILE or set RESTIC_PASSWORD_FILE "
                        "(never the password itself)")
    path = Path(name).expanduser()
    if not path.is_file():
        raise RepoError(f"repository password file {path} does not exist")
    try:
        return private_file(path, "repository password file")
    except NotPrivate as exc:
        raise RepoError(str(exc)) from None


def open_repo(location: str | None, given_password_file: str | Path | None, ssh_config: Path | None = None,
              accept_new_host_keys: bool = False) -> Repo:
    """A :class:`Repo` from the user's options (RepoError when restic or the options cannot work)."""
    if not location or location.startswith("-") or "\0" in location or "\n" in location:
        raise RepoError(f"--repo {str(location)[:80]!r} is not a restic repository location")
    check_version()
    repo = Repo(location, password_file(given_password_file), ssh_config, accept_new_host_keys)
    repo.command()  # an sftp location that cannot be used is refused here
    return repo


def parse_version(out: str) -> tuple[int, int, int]:
    """The version ``restic version`` printed (RepoError when it is not restic's answer)."""
    m = re.match(r"restic (\d{1,4})\.(\d{1,4})\.(\d{1,4})\b", out)
    if not m:
        raise RepoError(f"restic version says {out[:80]!r}: not a restic maasops knows")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


@cache
def restic_version() -> tuple[int, int, int]:
    """The installed restic's version, asked once (RepoError when restic is missing)."""
    try:
        out = subprocess.run([RESTIC, "version"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RepoError(f"restic cannot run ({exc}): {INSTALL_HINT}") from None
    return parse_version(out)


def check_version() -> None:
    """RepoError unless restic is installed and makes repository format 2 (restic 0.14 or later)."""
    if restic_version()[:2] < MIN_VERSION:
        raise RepoError(f"restic {dotted(restic_version())} cannot make repository format 2 "
                        f"(compressed): restic {dotted(MIN_VERSION)} or later is needed")


def dotted(version: tuple[int, ...]) -> str:
    """``0.18.0``."""
    return ".".join(map(str, version))


@dataclass(frozen=True)
class Paths:
    """What a restic version gets: how a file of a snapshot comes out, and how a snapshot's file is named."""

    version: tuple[int, int, int]

    @property
    def parallel_dump(self) -> bool:
        """``restic dump`` loads a file's blobs in parallel (0.17 and later)."""
        return self.version[:2] >= PARALLEL_DUMP

    @property
    def ahead_blocks(self) -> int:
        """MiB a restore reads ahead of its upload."""
        return AHEAD_BLOCKS[self.parallel_dump]

    @property
    def stdin_dirs(self) -> bool:
        """``backup --stdin-filename`` takes a name with directories (every version but 0.18.0)."""
        return self.version not in STDIN_NO_DIRS

    def describe(self) -> str:
        """One line: the restic and the paths it gets."""
        dump = ("parallel restic dump" if self.parallel_dump else "restic dump loading one blob after another "
                f"(parallel from {dotted(PARALLEL_DUMP)})")
        names = "" if self.stdin_dirs else ("; snapshots of new sets named flat, deployment+time+host+file (this "
                                            "restic cannot back up stdin under a directory: restic#5324)")
        return (f"restic {dotted(self.version)}: restore from a repository by {dump}, "
                f"{self.ahead_blocks} MiB read ahead{names}")


def paths() -> Paths:
    """What the installed restic gets (RepoError when it is missing or unknown)."""
    return Paths(restic_version())


def describe_installed() -> str:
    """:meth:`Paths.describe` of the installed restic, or why there is none (never raises)."""
    try:
        check_version()
        return paths().describe()
    except RepoError as exc:
        return f"restic: {exc}"


def _said(stderr: str | bytes) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return " / ".join(lines[-3:])[-STDERR_KEEP:] or "no message"


def run(repo: Repo, *args: str, timeout: float | None = TIMEOUT) -> str:
    """Run ``restic ARGS`` on the repository; its stdout (RepoError with restic's words when it fails)."""
    try:
        proc = subprocess.run(repo.command(*args), env=repo.env(), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RepoError(f"restic {args[0]} on {repo} did not end within {timeout:.0f}s") from None
    except OSError as exc:
        raise RepoError(f"restic cannot run ({exc}): {INSTALL_HINT}") from None
    if proc.returncode != 0:
        raise RepoError(f"restic {args[0]} on {repo} failed: {_said(proc.stderr)}")
    return proc.stdout


def run_json(repo: Repo, *args: str, timeout: float | None = TIMEOUT) -> object:
    """Run ``restic --json ARGS``; its JSON document."""
    out = run(repo, "--json", *args, timeout=timeout)
    try:
        return json.loads(out) if out.strip() else None
    except ValueError:
        raise RepoError(f"restic {args[0]} on {repo} printed no JSON: {out[:80]!r}") from None


def ensure(repo: Repo) -> int:
    """Create the repository (format 2) when there is none yet; the repository's format version."""
    try:
        config = run_json(repo, "cat", "config")
    except RepoError as exc:
        if NO_REPOSITORY not in str(exc) and "does not exist" not in str(exc):
            raise
        run(repo, "init", "--repository-version", str(FORMAT))
        config = run_json(repo, "cat", "config")
    version = config.get("version") if isinstance(config, dict) else None
    if not isinstance(version, int):
        raise RepoError(f"{repo}: restic cat config names no repository version")
    return version


def unlock(repo: Repo) -> None:
    """Remove stale locks only (left by a restic that was killed: its process is gone, or 30 minutes old)."""
    run(repo, "unlock")


def tag_args(tags: dict[str, str]) -> list[str]:
    """``--tag`` arguments: maasops's own tag and ``key=value`` tags (no comma: restic splits tags on it)."""
    out = ["--tag", TAG]
    for key, value in tags.items():
        out += ["--tag", f"{key}={str(value).replace(',', '_')}"]
    return out



def utc(when: float) -> str:
    """A time as ``restic backup --time`` reads it (restic runs with TZ=UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when))


class SnapshotSink:
    """``restic backup --stdin``: every byte written goes into one file of a new snapshot.

    ``close()`` ends the input and waits: the snapshot exists when it returns (sha256 and
    size of what was written; :attr:`summary` holds restic's summary). ``abort()`` stops
    restic with SIGINT before its input ends, so no snapshot of a cut file is ever made.
    """

    def __init__(self, repo: Repo, path: str, tags: dict[str, str], host: str, when: float):
        self.repo, self.path = repo, path
        self._out, self._err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        args = ["backup", "--json", "--quiet", "--stdin", "--stdin-filename", path, "--host", host,
                "--time", utc(when), *tag_args(tags)]
        try:
            self._proc = subprocess.Popen(repo.command(*args), env=repo.env(), stdin=subprocess.PIPE,
                                          stdout=self._out, stderr=self._err)
        except OSError as exc:
            raise RepoError(f"restic cannot run ({exc}): {INSTALL_HINT}") from None
        self._digest = hashlib.sha256()
        self._size = 0
        self.summary: dict = {}

    @property
    def written(self) -> tuple[str, int]:
        """sha256 and size of what was written so far."""
        return self._digest.hexdigest(), self._size

    def _failed(self) -> RepoError:
        self._err.seek(0)
        return RepoError(f"restic backup of {self.path} into {self.repo} failed: {_said(self._err.read())}")

    def write(self, data: bytes) -> int:
        """Hand bytes to restic (RepoError when restic has died)."""
        try:
            self._proc.stdin.write(data)
        except (BrokenPipeError, ValueError):
            self._proc.wait()
            raise self._failed() from None
        self._digest.update(data)
        self._size += len(data)
        return len(data)

    def close(self) -> tuple[str, int]:
        """End of the file: wait for restic's snapshot; the sha256 and size of what was written."""
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        if self._proc.wait() != 0:
            raise self._failed()
        self._out.seek(0)
        for line in self._out.read().decode(errors="replace").splitlines():
            if '"summary"' in line:
                self.summary = json.loads(line)
        return self._digest.hexdigest(), self._size

    def abort(self) -> None:
        """Stop restic before its input ends: no snapshot is made."""
        interrupt(self._proc)
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass


def interrupt(proc: subprocess.Popen) -> None:
    """Stop a restic that is still running as Ctrl-C would (it removes its lock), killing it if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(ABORT_WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def dump(repo: Repo, snapshot: str, path: str) -> Iterator[BinaryIO]:
    """A reader of one file of a snapshot, streamed by ``restic dump`` (never written to disk).

    A caller that read to the end, or failed because restic did, hears a RepoError with restic's
    words; one that stopped early does not care how the rest would have gone (restic is
    interrupted, and removes its lock).
    """
    err = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(repo.command("dump", snapshot, path), env=repo.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err)
    except OSError as exc:
        raise RepoError(f"restic cannot run ({exc}): {INSTALL_HINT}") from None
    reader = pipes.ReadAhead(proc.stdout, paths().ahead_blocks)
    finished = False
    try:
        yield reader
        finished = True
    finally:
        ended = (finished and reader.read(1) == b"") or proc.poll() is not None
        if not ended:
            interrupt(proc)
        reader.close()
        code = proc.wait()
        proc.stdout.close()
        if ended and code != 0:
            err.seek(0)
            raise RepoError(f"restic dump of {path} from {repo} failed: {_said(err.read())}")
