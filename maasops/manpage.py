"""``maasops.1``: the man page, made from the same table as every task's ``--help`` (:mod:`maasops.options`).

``python -m maasops.manpage > maasops/maasops.1`` writes it; a test keeps the file in the
package equal to what this prints, and pip installs it as ``share/man/man1/maasops.1``.
"""

from __future__ import annotations

from maasops import __version__
from maasops.namespace import SPECS
from maasops.options import OPTIONS, TaskSpec

EXIT_CODES = (
    ("0", "every host did what was asked"),
    ("1", "at least one host failed (a backup: none was backed up); a set that does not verify"),
    ("2", "refused before anything was stopped or changed: a command line that does not parse, a value refused by "
          "name, no hosts, a set that does not verify for a restore, a failed preflight, a locked host"),
    ("3", "a partial backup: some hosts backed up, the set is incomplete"),
    ("10", "the restic repository does not exist"),
    ("11", "the restic repository is locked"),
    ("12", "the repository password is wrong"),
    ("130", "interrupted (Ctrl-C or SIGTERM): what was stopped was started again"),
)


def _roff(text: str) -> str:
    """Text as roff prints it: backslashes and hyphens escaped, no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line if line.startswith((".", "'")) else line) for line in text.splitlines())


def _task(spec: TaskSpec) -> list[str]:
    words = " ".join([f"maasops [core options] {spec.name}", *(f"[{p.upper()}]" for p in spec.positional),
                      "[options]"])
    lines = [".SS " + _roff(spec.name), _roff(spec.doc.strip()), ".PP", ".B " + _roff(words)]
    for name in spec.positional + spec.options:
        o = OPTIONS[name]
        default = f" (default {o.default})" if o.default not in (None, False, True) else ""
        default += f" ({o.low} to {o.high})" if o.low is not None else ""
        lines += [".TP", ".B " + _roff(o.shown().strip()), _roff(o.help + default)]
    return lines


def render() -> str:
    """The man page, in roff."""
    lines = [f'.TH MAASOPS 1 "" "maasops {__version__}" "User Commands"', ".SH NAME",
             "maasops \\- back up and restore whole MAAS deployments over SSH", ".SH SYNOPSIS",
             ".B maasops", "[core options] TASK [SET] [options]", ".br", ".B maasops help", "[TASK]", ".br",
             ".B maasops version", ".SH DESCRIPTION",
             _roff("maasops backs up and restores MAAS region and rack controllers (deb or snap, MAAS 2.7 to 3.x) "
                   "from the machine you administer MAAS from; nothing is installed on the controllers. The tasks, "
                   "in runbook order, and their options follow; each option means the same in every task. Every "
                   "value is checked when the command line is parsed: one that cannot work is refused, naming "
                   "the flag or the file."),
             ".SH CORE OPTIONS",
             _roff("Before the task name: -H hosts (comma-separated [user@]host[:port]), -S ssh_config, -i key file, "
                   "-t connect timeout (seconds; also the wait for the SSH banner), --prompt-for-sudo-password "
                   "(a terminal only), -q/--quiet (only warnings, errors and the JSON document), -v/--verbose (what "
                   "SSH says, and a traceback for an error maasops did not foresee). Without -H: --inventory, else "
                   "$MAASOPS_INVENTORY, else ~/.config/maasops/inventory.yaml, else (restore) the hosts the set "
                   "records, else the lab."),
             ".SH TASKS"]
    for spec in SPECS:
        lines += _task(spec)
    lines += [".SH EXIT STATUS"]
    for code, meaning in EXIT_CODES:
        lines += [".TP", f".B {code}", _roff(meaning)]
    lines += [".SH FILES", ".TP", ".I ~/.config/maasops/inventory.yaml", "the inventory used without -H or "
              "\\-\\-inventory", ".TP", ".I ~/.config/maasops/allowed_signers", "whose signatures verify and "
              "restore trust", ".SH SEE ALSO", "docs/command\\-line.md, docs/dr\\-drill.md, docs/keeping\\-backups.md "
              "in maasops's source; restic(1), ssh_config(5)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
