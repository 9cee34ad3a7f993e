"""The last run's outcome as a Prometheus textfile, for the node exporter an admin already runs.

One file holds the latest run of every operation and deployment written to it:
a new run replaces its own lines and keeps the others. The file is written whole
and renamed into place, so the exporter never reads half of it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from maasops.results import RunResult

METRICS = (
    ("maasops_last_run_timestamp_seconds", "gauge", "When the last run of this operation ended (Unix time)."),
    ("maasops_last_run_success", "gauge", "1 when the last run of this operation succeeded on every host, else 0."),
    ("maasops_last_run_exit_code", "gauge", "The last run's exit code (0 ok, 1 failed, 2 refused, 130 interrupted)."),
    ("maasops_last_run_hosts_failed", "gauge", "Hosts whose part of the last run did not succeed."),
    ("maasops_last_run_bytes", "gauge", "Bytes the last run wrote to the backup set."),
)
LABEL = r'"((?:[^"\\]|\\.)*)"'  # a label value as written: \\, \" and \n escaped
SAMPLE = re.compile(rf"^(\w+)\{{operation={LABEL},deployment={LABEL}\}} (\S+)$")


def _label(value: str) -> str:
    """A label value escaped as the Prometheus text format wants."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _samples(result: RunResult, deployment: str) -> dict[tuple[str, str, str], str]:
    ok_statuses = ("ok", "rolled back", "nothing to roll back")
    failed = sum(1 for h in result.hosts.values() if h.status not in ok_statuses)
    values = (time.time(), 1 if result.code == 0 else 0, result.code, failed,
              sum(h.size for h in result.hosts.values()))
    return {(name, result.operation, _label(deployment)): f"{value:.3f}" if isinstance(value, float) else str(value)
            for (name, _, _), value in zip(METRICS, values, strict=True)}


def write(path: Path, result: RunResult, deployment: str) -> None:
    """Record ``result`` in the textfile at ``path`` (other operations' and deployments' lines are kept)."""
    samples: dict[tuple[str, str, str], str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            m = SAMPLE.match(line)
            if m:
                samples[(m.group(1), m.group(2), m.group(3))] = m.group(4)
    samples.update(_samples(result, deployment))
    lines = []
    for name, kind, help_ in METRICS:
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
        lines += [f'{n}{{operation="{op}",deployment="{dep}"}} {v}' for (n, op, dep), v in sorted(samples.items())
                  if n == name]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o644)
    tmp.rename(path)
