"""Every bad input a new user may type, through the installed ``maasops`` (a fresh venv, run from an empty directory
with an empty home): a clear refusal naming the flag or file, the documented exit code, never a traceback, and with
``--json`` one JSON document on stdout whose exit code is the process's.

No host is needed: a host that accepts TCP and never speaks SSH is a listener on the loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from maasops.results import FAILED, INTERRUPTED, NO_REPOSITORY, REFUSED, REPOSITORY_LOCKED, WRONG_PASSWORD
from tests.labtools import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """An empty home and working directory, and the files the bad inputs name."""
    d = tmp_path_factory.mktemp("world")
    (d / "home").mkdir()
    (d / "work").mkdir()
    files = {"home": d / "home", "work": d / "work", "bad_utf8": d / "bad-utf8.yaml", "bad_yaml": d / "bad.yaml",
             "unknown_key": d / "unknown.yaml", "bastion": d / "inventory" / "ha-bastion.yaml", "set": d / "set",
             "key": d / "id_ed25519", "pw": d / "pw", "wrong_pw": d / "wrong-pw", "repo": d / "repo"}
    files["bad_utf8"].write_bytes(b"deployment: dc1\nhosts:\n  region\xff1:\n    roles: [region]\n")
    files["bad_yaml"].write_text("deployment: dc1\nhosts: [\n")
    files["unknown_key"].write_text("deployment: dc1\nhosts:\n  region1:\n    roles: [region]\n    colour: red\n")
    files["bastion"].parent.mkdir()
    shutil.copy(ROOT / "inventory" / "ha-bastion.yaml", files["bastion"])  # its secrets/rack3-sudo is not there
    files["set"].mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(files["key"])], check=True)
    for name, text in (("pw", "right\n"), ("wrong_pw", "wrong\n")):
        files[name].write_text(text)
        files[name].chmod(0o600)
    subprocess.run(["restic", "init", "-q", "-r", str(files["repo"]), "--password-file", str(files["pw"])],
                   check=True, capture_output=True)
    return files


def run(installed: Path, world: dict[str, Path], argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``maasops ARGV`` from the empty working directory, with the empty home, stdin not a terminal."""
    env = {"PATH": os.environ["PATH"], "HOME": str(world["home"]), "LANG": "C.UTF-8"}
    return subprocess.run([str(installed), *argv], cwd=world["work"], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, **kwargs)


def document(r: subprocess.CompletedProcess) -> dict:
    """The one JSON document on stdout; its exit code is the process's, and stderr has no traceback."""
    assert "Traceback" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    assert doc["exit_code"] == r.returncode, (doc, r.stderr)
    return doc


# (what, command line, exit code, words the message has); {name} is a file of the world, {port} the silent listener.
CASES = [
    ("inventory not UTF-8", ["probe", "-I", "{bad_utf8}"], REFUSED, "bad-utf8.yaml: cannot read inventory: not UTF-8"),
    ("inventory YAML error", ["probe", "-I", "{bad_yaml}"], REFUSED, "bad.yaml:"),
    ("inventory unknown key", ["probe", "-I", "{unknown_key}"], REFUSED, "unknown key 'colour'"),
    ("inventory missing", ["probe", "-I", "{home}/nope.yaml"], REFUSED, "nope.yaml: cannot read inventory"),
    ("-H empty names", ["-H", ",,", "probe"], REFUSED, "-H: an empty host name"),
    ("-H port not a number", ["-H", "host:abc", "probe"], REFUSED, "-H 'host:abc'"),
    ("-S missing file", ["-S", "{home}/no_ssh_config", "-H", "a", "probe"], REFUSED, "-S "),
    ("-i missing file", ["-i", "{home}/no_key", "-H", "a", "probe"], REFUSED, "-i "),
    ("prompt without a terminal", ["--prompt-for-sudo-password", "-H", "a", "probe"], REFUSED,
     "--prompt-for-sudo-password: stdin is not a terminal"),
    ("sudo_password_file missing (the README's)", ["backup", "--inventory", "{bastion}", "--parallel", "4"],
     REFUSED, "hosts.rack3.sudo_password_file"),
    ("metrics file in a missing directory", ["backup", "-H", "a", "--metrics-file", "{home}/none/m.prom"],
     REFUSED, "--metrics-file"),
    ("--parallel 0", ["probe", "-H", "a", "--parallel", "0"], REFUSED, "--parallel 0"),
    ("--parallel -1", ["backup", "--parallel=-1"], REFUSED, "--parallel -1"),
    ("--parallel 99999", ["backup", "-P", "99999"], REFUSED, "--parallel 99999"),
    ("--parallel many", ["probe", "-P", "many"], REFUSED, "--parallel 'many'"),
    ("restore --keep 0", ["restore", "{set}", "--keep", "0"], REFUSED, "--keep 0"),
    ("cleanup --keep 0", ["cleanup", "--keep", "0"], REFUSED, "--keep 0"),
    ("--deployment ''", ["backup", "--deployment", ""], REFUSED, "--deployment: an empty value"),
    ("--encrypt-to ''", ["backup", "--encrypt-to", ""], REFUSED, "--encrypt-to: an empty value"),
    ("--encrypt-to not a key", ["backup", "--encrypt-to", "nonsense"], REFUSED, "--encrypt-to"),
    ("--compress unknown", ["backup", "--compress", "rar"], REFUSED, "--compress 'rar'"),
    ("--map malformed", ["restore", "{set}", "--map", "a"], REFUSED, "--map"),
    ("--maas-url not a URL", ["restore", "{set}", "--maas-url", "x;y"], REFUSED, "--maas-url"),
    ("--decrypt-key missing", ["verify", "{set}", "--decrypt-key", "{home}/age.txt"], REFUSED, "--decrypt-key"),
    ("verify a missing set", ["verify", "{home}/backups/dc1/none"], REFUSED, "none: no such directory"),
    ("verify names no set", ["verify"], REFUSED, "maasops"),
    ("push a missing set", ["push", "{home}/none", "--repo", "{repo}"], REFUSED, "none: no such directory"),
    ("unknown flag", ["backup", "--nope"], REFUSED, "--nope"),
    ("unknown task", ["nope"], REFUSED, "nope"),
    ("help of an unknown task", ["help", "nope"], REFUSED, "no task 'nope'"),
    ("plan of nothing known", ["plan", "sideways"], REFUSED, "'sideways': must be one of backup, restore"),
    ("schedule action unknown", ["schedule", "reboot"], REFUSED, "must be one of install, status, remove"),
    ("-H and --inventory", ["-H", "a", "probe", "-I", "{unknown_key}"], REFUSED, "not both"),
    ("no hosts", ["probe"], REFUSED, "No hosts"),
    ("unreachable host headlined", ["-H", "nosuch.invalid", "backup", "--sign-key", "{key}"], REFUSED,
     "nosuch.invalid: probe"),
    ("repository missing", ["sets", "--repo", "{home}/no-repo", "--repo-password-file", "{pw}"], NO_REPOSITORY,
     "repository does not exist"),
    ("repository password wrong", ["sets", "--repo", "{repo}", "--repo-password-file", "{wrong_pw}"],
     WRONG_PASSWORD, "wrong password"),
    ("host that never speaks SSH", ["-H", "127.0.0.1:{port}", "-t", "2", "probe"], FAILED,
     "accepted the connection but no SSH server answered within 2 s"),
]


@pytest.fixture(scope="module")
def silent_port() -> int:
    """A loopback port that accepts TCP connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for c in held:
        c.close()


@pytest.mark.parametrize("what,argv,code,says", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_refused_by_name_without_a_traceback(installed, world, silent_port, what, argv, code, says):
    names = {k: str(v) for k, v in world.items()} | {"port": str(silent_port)}
    argv = [a.format(**names) for a in argv]
    r = run(installed, world, [*argv, "--json"])
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert says in r.stderr, r.stderr
    doc = document(r)
    assert says in json.dumps(doc), doc
    plain = run(installed, world, argv)  # without --json: the same refusal, on stderr
    assert plain.returncode == code and says in plain.stderr and "Traceback" not in plain.stderr, plain.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_a_host_never_answers_ends_the_run_at_once_with_130_and_a_document(installed, world, sig):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    env = {"PATH": os.environ["PATH"], "HOME": str(world["home"]), "LANG": "C.UTF-8"}
    # -t 120: the banner timeout is -t; the signal must end the run long before it, however busy the machine
    proc = subprocess.Popen([str(installed), "-t", "120", "-H", f"127.0.0.1:{server.getsockname()[1]}", "probe",
                             "--json"],
                            cwd=world["work"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    conn, _ = server.accept()  # maasops is now waiting for an SSH banner that never comes
    try:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)  # well before the banner timeout
    finally:
        proc.kill()
        conn.close()
        server.close()
    r = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert r.returncode == INTERRUPTED, (out, err)
    assert document(r)["status"] == "interrupted"
    assert err.strip().splitlines()[-1] == "interrupted"


def test_help_and_version_words_and_no_fabric_only_flags(installed, world):
    r = run(installed, world, ["help", "backup"])
    assert r.returncode == 0 and r.stdout.startswith("Usage: maasops [core options] backup [options]")
    r = run(installed, world, ["version"])
    assert r.returncode == 0 and r.stdout.startswith("maasops ")
    r = run(installed, world, ["--help"])
    assert r.returncode == 0 and "-q, --quiet" in r.stdout and "-v, --verbose" in r.stdout
    for gone in ("--hide", "--write-pyc", "-p, --pty", "-R, --dry", "-w, --warn-only"):
        assert gone not in r.stdout, gone
    r = run(installed, world, ["--hide", "both", "probe"])
    assert r.returncode == REFUSED and "--hide" in r.stderr


def test_the_man_page_is_installed_with_the_package(installed):
    page = installed.parent.parent / "share" / "man" / "man1" / "maasops.1"
    assert page.read_text() == (ROOT / "maasops" / "maasops.1").read_text()
    r = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, env={**os.environ, "MANWIDTH": "100"})
    assert r.returncode == 0 and "--parallel" in r.stdout.replace("\u2010", "-") and "EXIT STATUS" in r.stdout


def test_a_locked_repository_exits_with_restics_code(installed, world):
    holder = subprocess.Popen(["restic", "-q", "-r", str(world["repo"]), "--password-file", str(world["pw"]), "backup",
                               "--stdin"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        locks = world["repo"] / "locks"
        while not any(locks.iterdir()):  # restic holds its lock while it waits for stdin
            assert holder.poll() is None, holder.stderr.read()
        r = run(installed, world, ["prune", "--repo", str(world["repo"]), "--repo-password-file", str(world["pw"]),
                                   "--json"])
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == REPOSITORY_LOCKED and "repository is already locked" in r.stderr, r.stderr
    assert document(r)["status"] == "repository locked"


@pytest.mark.parametrize("where", ["env", "home"])
def test_the_default_inventory_is_maasops_inventory_else_the_users_config(installed, world, tmp_path, where):
    home = tmp_path / "home"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    if where == "env":
        env["MAASOPS_INVENTORY"] = str(world["unknown_key"])
        named = str(world["unknown_key"])
    else:
        (home / ".config" / "maasops").mkdir(parents=True)
        named = str(shutil.copy(world["unknown_key"], home / ".config" / "maasops" / "inventory.yaml"))
    r = subprocess.run([str(installed), "probe"], cwd=world["work"], env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == REFUSED and f"{named}:" in r.stderr and "unknown key 'colour'" in r.stderr, r.stderr


def test_quiet_prints_no_table_and_still_the_error(installed, world):
    loud = run(installed, world, ["-H", "nosuch.invalid", "probe"])
    quiet = run(installed, world, ["-q", "-H", "nosuch.invalid", "probe"])
    assert loud.returncode == quiet.returncode == FAILED
    assert "nosuch.invalid" in loud.stdout and quiet.stdout == ""  # the table goes to stdout, not with -q
    assert "nosuch.invalid: probe" in loud.stderr and "nosuch.invalid: probe" in quiet.stderr
