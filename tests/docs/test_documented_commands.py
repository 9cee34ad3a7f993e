"""The commands README.md and docs/command-line.md show, copied from the files as they are written.

Those that need no host (help, lists, version, the man page, shell completion) run for real through the installed
``maasops`` (a fresh venv) in an empty home, in the order the files give them, in one shell: the completion lines
must work on a fresh home. Those that act on hosts the files only imagine (``-H region1,...``, ``dc1.yaml``,
``backups/dc1/...``, a restic repository, the drill and the lab's own tasks) are checked by parse only: every task and
flag they use exists, and every value they give passes its option's checks except for files that are not here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from invoke.parser import Parser, ParserContext

from maasops.namespace import ns
from maasops.options import OptionError
from maasops.program import WORDS, program
from tests.labtools import ROOT

pytestmark = pytest.mark.slow

FILES = ("README.md", "docs/command-line.md")
NO_HOSTS = ("--list", "--help", "-h", "--version", "--print-completion-script") + tuple(WORDS)


def documented() -> list[tuple[str, str]]:
    """(file, command line) for every ``maasops`` command, ``mkdir`` and completion line of the files' sh blocks,
    and every inline ``maasops ...`` that names a task, in the files' order."""
    found = []
    for name in FILES:
        text = (ROOT / name).read_text()
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            for line in block.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line.startswith(("maasops ", "mkdir ", "source <(maasops ")):
                    found.append((name, line))
        for inline in re.findall(r"`((?:mkdir [^`]*&& )?maasops [^`]*)`", text):
            if "<" not in inline.replace("<(", ""):  # not a placeholder like `maasops backup --<TAB>`
                found.append((name, inline))
    return found


def maasops_words(line: str) -> list[str]:
    """The words of the ``maasops`` command in a line (after ``&&``, inside ``<(...)``, before a redirection)."""
    line = line.split("&&")[-1].replace("source <(", "").rstrip(")")
    words = shlex.split(line.split(">")[0])
    return words[1:] if words and words[0] == "maasops" else []


def runs_without_hosts(line: str) -> bool:
    """A line that needs no host: a directory made, help, a list, the version, completion."""
    words = maasops_words(line)
    return line.startswith("mkdir") or any(w in NO_HOSTS for w in words)


COMMANDS = documented()
HOSTLESS = [c for c in COMMANDS if runs_without_hosts(c[1])]
WITH_HOSTS = [c for c in COMMANDS if not runs_without_hosts(c[1])]


def test_the_files_show_commands_of_both_kinds():
    assert len(HOSTLESS) >= 10 and len(WITH_HOSTS) >= 15, COMMANDS
    assert any("bash-completion" in line for _, line in HOSTLESS)


def test_the_commands_that_need_no_host_run_as_written_on_a_fresh_home(installed, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    script = ["set -e"]
    for name, line in HOSTLESS:
        # zsh's script is sourced by zsh, not this shell: its text is what is checked here
        line = re.sub(r"^source <\((.*)\)$", r"\1 > /dev/null", line)
        script += [f"echo '>>> {name}: {line}' >&2", line]
    env = {"PATH": f"{installed.parent}:{os.environ['PATH']}", "HOME": str(home), "LANG": "C.UTF-8"}
    r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert "complete -F _complete_maasops" in (home / ".local/share/bash-completion/completions/maasops").read_text()
    assert (home / ".config/fish/completions/maasops.fish").stat().st_size > 0


def _parse(words: list[str]) -> list[ParserContext]:
    core = ParserContext(args=program.core_args())
    return Parser(contexts=ns.to_contexts(), initial=core).parse_argv(words)


@pytest.mark.parametrize("where,line", WITH_HOSTS, ids=[f"{w}: {line}" for w, line in WITH_HOSTS])
def test_the_commands_that_act_on_hosts_parse_as_written(where, line):
    parsed = _parse(maasops_words(line))
    tasks = parsed[1:]
    assert tasks, line
    for ctx in tasks:
        spec = ns[ctx.name].spec
        given = {a.attr_name or a.name: a.value for a in ctx.args.values()}
        try:
            spec.parse(given)
        except OptionError as exc:  # a file the command imagines is not here, a value elided (age1...); any other
            # refusal is the docs' bug
            assert re.search(r": (no such file|no such directory|its directory .* does not exist)", str(exc)) or (
                "..." in line and "..." in str(exc)), exc


def test_the_readme_backup_through_a_bastion_is_refused_by_name_when_its_secret_is_missing(installed, tmp_path):
    """README: ``maasops backup --inventory inventory/ha-bastion.yaml --parallel 4``, from a checkout whose
    inventory/secrets/rack3-sudo was never written."""
    line = next(line for _, line in COMMANDS if "ha-bastion.yaml" in line)
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "ha-bastion.yaml").write_text((ROOT / "inventory" / "ha-bastion.yaml").read_text())
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    r = subprocess.run([str(installed), *maasops_words(line)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"hosts.rack3.sudo_password_file {Path(tmp_path, 'inventory/secrets/rack3-sudo')}" in r.stderr
