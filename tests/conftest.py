"""Shared fixtures: a session-wide lab (real sshd, sudo, PostgreSQL) and a scratch PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from maasops import connect
from maasops.lab import lab as lab_mod
from tests.labtools import ROOT, need_root, remove_tool

PG_BIN = Path("/usr/lib/postgresql")


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Iterator[lab_mod.Lab]:
    """1 region (deb 3.5, owns the DB) + rack1 (snap 3.4) + rack2 (deb 3.5, sudo password), via bastion."""
    need_root()
    d = tmp_path_factory.mktemp("lab") / "lab"
    the_lab = lab_mod.up(d, regions=1, racks=2, profile="deb-3.5,rack1=snap-3.4", db_mb=2)
    yield the_lab
    lab_mod.down(d)


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """The ``maasops`` command of a fresh venv (``python -m venv``) that pip installed this checkout into, its
    dependencies from the package index pip is configured with, as an admin installs it.

    pip builds from a copy of what the package is made of, so the build writes nothing into the checkout.
    """
    d = tmp_path_factory.mktemp("install")
    src = d / "src"
    shutil.copytree(ROOT / "maasops", src / "maasops", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", src / "pyproject.toml")
    subprocess.run([sys.executable, "-m", "venv", str(d / "venv")], check=True, timeout=300)
    r = subprocess.run([str(d / "venv" / "bin" / "pip"), "install", "-q", str(src)], capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    return d / "venv" / "bin" / "maasops"


@pytest.fixture
def cxn(lab):
    """A function making strict Fabric Connections to lab hosts (sudo password applied where needed)."""
    made = []

    def make(name: str, **kwargs):
        cfg = connect.with_ssh_config(connect.fabric_config(), lab.ssh_config)
        pw = lab.sudo_password_file.read_text() if lab.host(name).sudo_password else None
        c = connect.connection(name, cfg, sudo_password=pw, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def pg_tool(name: str) -> str:
    """Path of a PostgreSQL server binary (initdb, pg_ctl)."""
    versions = sorted((p for p in PG_BIN.iterdir() if (p / "bin" / name).exists()), key=lambda p: int(p.name))
    return str(versions[-1] / "bin" / name)


@pytest.fixture
def scratch_pg() -> Iterator[Path]:
    """A fresh, empty PostgreSQL cluster on this machine; yields its socket directory."""
    need_root()
    d = Path(tempfile.mkdtemp(prefix="maasops-pg-"))
    d.chmod(0o755)
    shutil.chown(d, "postgres", "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_pg, pg_tool("initdb"), "-D", str(d / "data"), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_pg, pg_tool("pg_ctl"), "-D", str(d / "data"), "-w", "-l", str(d / "log"),
                    "-o", f"-k {d} -c listen_addresses=''", "start"], check=True, capture_output=True)
    try:
        yield d
    finally:
        subprocess.run([*as_pg, pg_tool("pg_ctl"), "-D", str(d / "data"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tool_on(lab):
    """Put a wrapper for a tool on a host's sudo PATH (/usr/local/bin); remove them all afterwards."""
    placed = []

    def install(host: str, tool: str, script: str) -> None:
        lab.run(host, f"cat > /usr/local/bin/{tool} && chmod 755 /usr/local/bin/{tool}", input=script)
        placed.append((host, tool))
    yield install
    for host, tool in placed:
        remove_tool(lab, host, tool)
