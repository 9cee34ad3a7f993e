"""A dump holds data and MAAS's schema, nothing psql or the server would run (issue 24, item 3), against the lab.

Each set below is forged after the fact by code written here (not maasops's): lines put into region1's
plain dump, the checksums and manifests recomputed and the set re-signed with the lab's trusted key, as a
compromised controller's output would be. verify refuses it naming the line; the restore refuses it as the
dump goes up, before anything stops; and the host shows nothing written, run or changed: no file, the same
settings on disk, the same roles, every unit up.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import zstandard

from tests.labtools import backed_up, fab, journal_lines, small_lab, unit_states

pytestmark = pytest.mark.lab
PWNED = ("/tmp/pwned-by-dump", "/tmp/pwned2")
ROLES_SQL = "SELECT rolname, rolsuper, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles ORDER BY 1"
SETTINGS_SQL = "SELECT sourcefile, name, setting FROM pg_file_settings ORDER BY 1, 2"
DB_PART = "-- PostgreSQL database dump complete"  # its last line: lines go just before the closing "--"
ROLES_PART = "-- User Configurations"  # pg_dumpall --roles-only: the roles end before this heading

# attack: (the line its part holds before, the lines put there)
ATTACKS = {
    "shell escape": (DB_PART, ["\\! touch /tmp/pwned-by-dump"]),
    "COPY TO PROGRAM": (DB_PART, ["COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned2';"]),
    "ALTER SYSTEM": (DB_PART, ["ALTER SYSTEM SET log_min_messages = 'debug5';"]),
    "the MAAS role made superuser": (ROLES_PART, ["ALTER ROLE maas WITH SUPERUSER;"]),
    "a new superuser role": (ROLES_PART, ["CREATE ROLE evil SUPERUSER LOGIN PASSWORD 'x';"]),
}


def _unpack(data: bytes, codec: str) -> bytes:
    if codec == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(data).read()
    return gzip.decompress(data) if codec == "gzip" else data


def _pack(data: bytes, codec: str) -> bytes:
    if codec == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return gzip.compress(data) if codec == "gzip" else data


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def forge_dump(src: Path, dest: Path, host: str, before: str, lines: list[str], key: Path) -> int:
    """A copy of set ``src`` whose ``host`` dump holds ``lines`` just above the last ``before`` line (one line up:
    pg_dump frames its headings with "--"), re-signed with ``key``; returns the first inserted line's number."""
    shutil.copytree(src, dest)
    hdir = dest / host
    hm = json.loads((hdir / "manifest.json").read_text())
    d = hm["dump"]
    path = hdir / d["file"]
    text = _unpack(path.read_bytes(), d["compression"]).decode().split("\n")
    at = max(i for i, ln in enumerate(text) if ln == before) - 1
    text[at:at] = lines
    plain = "\n".join(text).encode()
    path.write_bytes(_pack(plain, d["compression"]))
    d.update(sha256=_sha(path), size=path.stat().st_size, uncompressed_size=len(plain))
    (hdir / "manifest.json").write_text(json.dumps(hm, indent=2) + "\n")
    sm = json.loads((dest / "manifest.json").read_text())
    sm["hosts"][host]["manifest_sha256"] = _sha(hdir / "manifest.json")
    sm["hosts"][host]["files"][d["file"]] = d["sha256"]
    (dest / "manifest.json").write_text(json.dumps(sm, indent=2) + "\n")
    (dest / "manifest.json.sig").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", "maasops", str(dest / "manifest.json")],
                   check=True, capture_output=True)
    return at + 1


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab of its own: its region's server holds MAAS's database alone, so its dump has the roles part."""
    yield from small_lab(tmp_path_factory, "dumps", "deb-3.5")


@pytest.fixture(scope="module")
def plain_set(lab, tmp_path_factory):
    s = backed_up(lab.inventory, tmp_path_factory.mktemp("plain"))
    assert json.loads((s / "region1" / "manifest.json").read_text())["dump"]["kind"] == "roles+pg_dump"
    return s


def host_state(lab) -> tuple:
    """What the attacks would change on region1, read from the host itself."""
    psql = "runuser -u postgres -- psql -XAt -c "
    return (lab.run("region1", "ls -d " + " ".join(PWNED) + " 2>/dev/null; true").stdout,
            lab.run("region1", psql + f"'{SETTINGS_SQL}'").stdout, lab.run("region1", psql + f"'{ROLES_SQL}'").stdout,
            unit_states(lab), journal_lines(lab))


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_dump_that_would_run_anything_is_refused_naming_the_line_before_anything_stops(lab, plain_set, tmp_path,
                                                                                        attack):
    before, lines = ATTACKS[attack]
    bad = tmp_path / plain_set.name
    line = forge_dump(plain_set, bad, "region1", before, lines, lab.signing_key)
    state = host_state(lab)
    assert state[0] == ""
    v = fab("verify", str(bad), "--inventory", str(lab.inventory))
    assert v.returncode == 1 and f"dump holds what a restore must not run: line {line}:" in v.stdout, v.stdout
    r = fab("restore", str(bad), "--inventory", str(lab.inventory))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "region1: upload database dump: refused, nothing written" in r.stdout and f"line {line}:" in r.stdout
    assert host_state(lab) == state  # no file, settings and roles as they were, no unit stopped or started


def test_the_plan_says_who_loads_what(lab, plain_set):
    r = fab("restore", str(plain_set), "--inventory", str(lab.inventory), "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("load database dump: the roles part as postgres (checked role statements only), the database created "
            "by maasops, its contents as maasops_loader (a member of maas, no superuser)") in r.stdout, r.stdout


EVENT_TRIGGER = ("CREATE FUNCTION public.evil() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$; "
                 "CREATE EVENT TRIGGER evil ON ddl_command_start EXECUTE FUNCTION public.evil();")


def test_a_directory_dump_whose_table_of_contents_has_an_entry_no_maas_dump_has_is_refused_before_the_stop(
        lab, tmp_path):
    """A compromised database server: an event trigger (it would run as whoever loads later DDL) is in the dump."""
    psql = "runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d maasdb -c "
    lab.run("region1", psql + f"'{EVENT_TRIGGER}'")
    try:
        bad = backed_up(lab.inventory, tmp_path, "--dump-format", "directory")
    finally:
        lab.run("region1", psql + "'DROP EVENT TRIGGER evil; DROP FUNCTION public.evil();'")
    state = host_state(lab)
    r = fab("restore", str(bad), "--inventory", str(lab.inventory))
    assert r.returncode != 0, r.stdout + r.stderr
    assert "the dump's table of contents holds entries no dump of MAAS's database has" in r.stdout, r.stdout
    assert "EVENT TRIGGER - evil" in r.stdout, r.stdout
    assert host_state(lab) == state
    assert lab.run("region1", psql + "'SELECT count(*) FROM pg_event_trigger'").stdout.strip() == "0"
