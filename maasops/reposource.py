"""A set read from a restic repository: the repository the options name, the set ``--set`` names, its manifests
written into a private directory and its files streamed out of the repository.

``maasops verify --repo`` and ``maasops restore --repo`` use these; everything else they do is
what they do for a local set (:mod:`maasops.verify`, :mod:`maasops.restore`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from invoke import Exit

from maasops import repo as restic
from maasops import reposet, verify
from maasops.repo import Repo, RepoError
from maasops.results import REFUSED

STATE_HOME = "~/.local/state"


def repository(location: str | None, password_file: str | None, ssh_config: Path | None = None,
               accept_new_host_keys: bool = False) -> Repo:
    """The repository ``--repo`` names, reached over SSH with ``ssh_config`` (Exit with code 2 when it cannot
    be used)."""
    if not location:
        raise Exit("which repository? give --repo REPO (see docs/keeping-backups.md)", code=REFUSED)
    try:
        return restic.open_repo(location, password_file, ssh_config, accept_new_host_keys)
    except RepoError as exc:
        raise Exit(f"--repo: {exc}", code=REFUSED) from None


def state_dir() -> Path:
    """Where sets read from a repository keep their manifests and restore records (for --rollback)."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path(STATE_HOME).expanduser())
    return base / "maasops" / "sets"


def select(repo: Repo, ref: str | None, deployment: str | None) -> reposet.RepoSet:
    """The set ``--set`` (or the positional: ``maasops verify LATEST --repo R``) names in the repository, of
    ``--deployment`` (Exit with code 2 when there is none)."""
    if not ref:
        raise Exit("which set of the repository? give --set latest, --set TIME or --set DEPLOYMENT/TIME "
                   "(maasops sets --repo lists them)", code=REFUSED)
    try:
        return reposet.find(reposet.catalog(repo), ref, deployment)
    except RepoError as exc:
        raise Exit(str(exc), code=REFUSED) from None


def fetch_set(repo: Repo, rs: reposet.RepoSet, dest: Path) -> tuple[Path, reposet.RepoFiles]:
    """The set's manifests written under ``dest``, and its files as the repository streams them."""
    try:
        return reposet.materialize(repo, rs, dest), reposet.RepoFiles(repo, rs)
    except (RepoError, OSError) as exc:
        raise Exit(f"{rs.name}: its manifests cannot be read from {repo}: {exc}", code=REFUSED) from None


def mark_verified(repo: Repo, rs: reposet.RepoSet, say: Callable[[str], None]) -> None:
    """Tag the set's manifests snapshot verified=<now> (what prune protects)."""
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    old = ["--remove", f"verified={rs.verified}"] if rs.verified else []
    try:
        restic.run(repo, "tag", *old, "--add", f"verified={now}", rs.manifests.id)
    except RepoError as exc:
        say(f"note: the set verified, but recording it in the repository failed: {exc}")


def verify_from_repo(repo: Repo, ref: str | None, deployment: str | None, policy: verify.Policy, parallel: int,
                     ids: list | None, say: Callable[[str], None]) -> tuple[str, verify.SetCheck]:
    """Verify a set of the repository (every byte streamed out of it); tagged verified when it checks out."""
    rs = select(repo, ref, deployment)
    with tempfile.TemporaryDirectory(prefix="maasops-verify-") as tmp:
        set_dir, files = fetch_set(repo, rs, Path(tmp))
        sc = verify.verify_set(set_dir, policy, parallel, ids, files=files)
    if sc.ok:
        mark_verified(repo, rs, say)
    return f"{repo} {rs.name}", sc


def restore_source(repo: Repo, ref: str | None, deployment: str | None) -> tuple[Path, reposet.RepoFiles]:
    """A repository set's manifests (kept, with its restore records, under :func:`state_dir`) and its files."""
    return fetch_set(repo, select(repo, ref, deployment), state_dir())
