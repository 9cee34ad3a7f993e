"""What a backup, restore or rollback ended with: one result type, one set of exit codes.

Exit codes, the same for every task:

==  =====================================================================
0   ok: every host did what was asked
1   failed: at least one host failed (the table and the JSON say which)
2   refused: nothing was stopped or changed anywhere (bad input, a set that
    does not verify, a target that fails preflight, a host that is locked)
130 interrupted (Ctrl-C or SIGTERM): what was stopped was started again
==  =====================================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

OK, FAILED, REFUSED, INTERRUPTED = 0, 1, 2, 130
STATUS_OF_CODE = {OK: "ok", FAILED: "failed", REFUSED: "refused", INTERRUPTED: "interrupted"}


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
