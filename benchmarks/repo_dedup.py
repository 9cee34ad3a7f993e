"""Issues 16 and 27's figures: a restic repository off-site (sftp to the lab's bastion) vs local sets.

One region (deb 3.5, images in image-storage), backed up twice, unchanged, into the repository:

- bytes the second backup adds to the repository, as a share of the first's (target ≤ 5 %);
- wall time of the second backup against the first (target ≤ 0.4×);
- a restore from the repository against a restore from a local set of the same data (target ≤ 1.1× with restic
  0.17 or later, whose dump loads blobs in parallel; the report names the restic and the path it got);
- peak RSS of the laptop's process in every run (flat: nothing is held whole).

Sizes: BENCH_REPO_IMAGES_MB (default 2048) of image-storage, BENCH_REPO_DB_MB (default 300) of raw dump.
Part of ``make bench``; alone: ``python -m benchmarks.run_all repo_dedup`` (as root: the lab needs it).
"""

from __future__ import annotations

import os

from benchmarks.common import Ratio, fab, fresh_dir, report, settle, site, timed
from maasops import repo as restic
from maasops.lab.lab import OFFSITE_DIR

IMAGES_MB = int(os.environ.get("BENCH_REPO_IMAGES_MB", "2048"))
DB_MB = int(os.environ.get("BENCH_REPO_DB_MB", "300"))
IMAGES = "/var/lib/maas/image-storage/bench"
REPO_NAME = "bench"


def prepare(the_lab) -> None:
    """Fill the region's image-storage with IMAGES_MB of incompressible image files (64 MiB each)."""
    files = max(1, IMAGES_MB // 64)
    size = min(IMAGES_MB, 64)
    the_lab.run("region1", f"mkdir -p {IMAGES} && for i in $(seq {files}); do head -c {size}M /dev/urandom "
                           f"> {IMAGES}/image$i; done && chown -R maas:maas {IMAGES}")


def repo_bytes(the_lab) -> int:
    """What the repository holds on the bastion's disk."""
    return int(the_lab.run("bastion", f"du -sb {OFFSITE_DIR}/{REPO_NAME}").stdout.split()[0])


def run() -> list[dict]:
    """Measure once at the configured sizes; the report."""
    with site("repo", regions=1, racks=0, profile="deb-3.5", db_mb=DB_MB) as the_lab:
        prepare(the_lab)
        inv = ["--inventory", str(the_lab.inventory)]
        repo = [*inv, "--repo", f"sftp:bastion:{OFFSITE_DIR}/{REPO_NAME}", "--repo-password-file",
                str(the_lab.repo_password_file)]
        first = timed(fab("backup", *repo))
        after_first = repo_bytes(the_lab)
        second = timed(fab("backup", *repo))
        added = repo_bytes(the_lab) - after_first
        local_dir = fresh_dir("repo-local")
        local = timed(fab("backup", *inv, "--backup-dir", str(local_dir), "--compress", "none"))
        [local_set] = sorted((local_dir / "lab").iterdir())
        settle(the_lab)()
        from_local = timed(fab("restore", *inv, str(local_set)))
        settle(the_lab)()
        from_repo = timed(fab("restore", *repo, "--set", "latest"))
    runs = (("backup 1 into the repository", first), ("backup 2 (unchanged)", second),
            ("backup into a local set (uncompressed)", local), ("restore from the local set", from_local),
            ("restore from the repository", from_repo))
    for name, r in runs:
        if r.code:
            raise RuntimeError(f"{name} failed ({r.code}): {r.output[-2000:]}")
    added_by = {"backup 1 into the repository": str(after_first), "backup 2 (unchanged)": f"+{added}"}
    rows = [{"run": name, "seconds": f"{r.seconds:.2f}", "repository bytes": added_by.get(name, ""),
             "peak RSS MiB": f"{r.rss_mib:.0f}"} for name, r in runs]
    return [report(
        "repo_dedup", f"Repository: deduplicated second backup, restore from the repository ({IMAGES_MB} MiB of "
        f"images, {DB_MB} MB database), one run each", rows,
        {"second backup bytes added / first": Ratio(added / after_first, "≤", 0.05),
         "second backup wall time / first": Ratio(second.seconds / first.seconds, "≤", 0.4),
         "restore from the repository / from a local set": Ratio(from_repo.seconds / from_local.seconds, "≤", 1.1)},
        "the second backup is measured against the first (the same fab backup --repo, unchanged data); the restore "
        "from the repository against fab restore of a local, uncompressed set of the same data (both verify, upload, "
        f"load and start the same way). This run's {restic.paths().describe()}.",
        {name: [round(r.seconds, 3)] for name, r in runs})]
