"""Our own development tasks (`inv --list`). The user's tasks are in fabfile.py."""

from invoke import task


@task
def lint(c):
    """ruff over the whole tree."""
    c.run(".venv/bin/ruff check .", pty=False)


@task(pre=[lint])
def test(c, k=None):
    """Lint, then the whole test suite (needs root for the lab)."""
    c.run(".venv/bin/pytest -q" + (f" -k {k!r}" if k else ""), pty=False)


@task
def lab_up(c, lab_dir=".lab"):
    """The default lab for poking at by hand (fab lab.up with its defaults)."""
    c.run(f".venv/bin/fab lab.up --lab-dir {lab_dir}")


@task
def lab_down(c, lab_dir=".lab"):
    """Tear the hand-made lab down."""
    c.run(f".venv/bin/fab lab.down --lab-dir {lab_dir}")


@task
def bench(c):
    """All six benchmarks and the memory check; rewrites benchmarks/RESULTS.md (see make bench for sizes)."""
    c.run(".venv/bin/python -m benchmarks.run_all", pty=False)
