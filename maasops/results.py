"""What a backup, restore or rollback ended with: one result type, one set of exit codes.

Exit codes, the same for every task (docs/command-line.md has the table); where restic has a code
for the same thing (a missing repository, a locked one, a wrong password, a partial backup), it is
restic's.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

OK, FAILED, REFUSED, PARTIAL, INTERRUPTED = 0, 1, 2, 3, 130
NO_REPOSITORY, REPOSITORY_LOCKED, WRONG_PASSWORD = 10, 11, 12  # restic's own codes (restic/cmd/restic/main.go)
STATUS_OF_CODE = {OK: "ok", FAILED: "failed", REFUSED: "refused", PARTIAL: "partial", INTERRUPTED: "interrupted",
                  NO_REPOSITORY: "no repository", REPOSITORY_LOCKED: "repository locked",
                  WRONG_PASSWORD: "wrong repository password"}
# What restic says when the repository is missing, locked, or the password is wrong: a failure or refusal that
# quotes it ends with restic's code for it.
RESTIC_SAYS = (("Is there a repository at the following location?", NO_REPOSITORY),
               ("repository does not exist", NO_REPOSITORY),
               ("repository is already locked", REPOSITORY_LOCKED),
               ("the `unlock` command can be used to remove stale locks", REPOSITORY_LOCKED),  # 0.14's last line
               ("wrong password or no key found", WRONG_PASSWORD))


# How maasops.repo quotes restic's own words: a command on a repository, a file stored into one, a file dumped from one.
RESTIC_FAILED = re.compile(r"restic (?:\S+ on|backup of \S+ into|dump of \S+ from) \S+ failed: (.*)", re.S)


def code_for(code: int, error: str) -> int:
    """The exit code of a run that ended with ``code`` and ``error``: restic's code where restic said why (in
    what maasops quotes of restic, never in a host's words elsewhere in the message)."""
    said = RESTIC_FAILED.search(error) if code in (FAILED, REFUSED) else None
    if said:
        return next((c for says, c in RESTIC_SAYS if says in said.group(1)), code)
    return code


@dataclass
class HostResult:
    """One host's line in a run's table."""

    host: str
    status: str
    source: str = ""  # restore and rollback: the backed-up host this one was restored from
    size: int = 0
    duration: float = 0.0
    downtime: float | None = None
    error: str = ""
    manual: list[str] = field(default_factory=list)  # commands to run by hand (units that did not start)

    def to_json(self) -> dict:
        """The line as the JSON report has it."""
        return asdict(self)


@dataclass
class RunResult:
    """What an operation ended with: its exit code, each host's line, the set, and details for the report."""

    operation: str  # backup | restore | rollback
    code: int
    hosts: dict[str, HostResult] = field(default_factory=dict)
    set_dir: Path | None = None
    error: str = ""
    details: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        """ok, failed, refused or interrupted (planned for a dry run that found nothing wrong)."""
        return self.details.get("status") or STATUS_OF_CODE.get(self.code, "failed")

    def to_json(self) -> dict:
        """The whole result as ``--json`` prints it."""
        return {"operation": self.operation, "status": self.status, "exit_code": self.code,
                "set": str(self.set_dir.absolute()) if self.set_dir else None, "error": self.error,
                "hosts": {n: h.to_json() for n, h in sorted(self.hosts.items())},
                **{k: v for k, v in self.details.items() if k != "status"}}


def refused(operation: str, error: str, **details) -> RunResult:
    """A run that stopped before touching anything."""
    return RunResult(operation, REFUSED, error=error, details=details)
