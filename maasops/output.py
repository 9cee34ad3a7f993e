"""What a command shows: words for people, the tables they read, and (``--json``) one JSON document on stdout.

Tables and reports go to stdout; warnings, errors and refusals to stderr. In JSON mode
everything meant for a person goes to stderr, so stdout carries the document alone and
a script can parse it. ``-q`` leaves out what is not a warning or an error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING

from tabulate import tabulate

from maasops.hosttext import clean, clean_data
from maasops.results import FAILED, OK

if TYPE_CHECKING:
    from maasops import probe, verify


class Documents:
    """How many JSON documents one run of the maasops program printed: it prints one for a run that had none.

    One per run, shared by every task's :class:`Output`: a copy of it is itself, as Invoke copies each value of the
    config its tasks get.
    """

    def __init__(self) -> None:
        self.printed = 0

    def __copy__(self) -> Documents:
        return self


class Output:
    """A command's output: text for people, and the JSON document when asked for (counted in ``documents``, the
    run's, when given)."""

    def __init__(self, json_mode: bool = False, verbosity: int = 0, documents: Documents | None = None):
        self.json_mode = json_mode
        self.quiet = verbosity < 0  # -q
        self.emitted = False  # the run's document was handed over (and printed, with --json)
        self.documents = documents

    def say(self, text: str) -> None:
        """A line (or lines) for a person: stdout, or stderr in JSON mode; nothing with -q. Control characters a
        host may have put in it are shown as escapes (:func:`maasops.hosttext.clean`)."""
        if not self.quiet:
            print(clean(text), file=sys.stderr if self.json_mode else sys.stdout, flush=True)

    def warn(self, text: str) -> None:
        """A warning or an error for a person: always, on stderr (control characters as escapes)."""
        print(clean(text), file=sys.stderr, flush=True)

    def emit(self, document: dict) -> None:
        """The JSON document, on stdout (JSON mode only); its strings' control characters as escapes, as in text."""
        self.emitted = True
        if self.json_mode:
            if self.documents is not None:
                self.documents.printed += 1
            json.dump(clean_data(json.loads(json.dumps(document, default=str))), sys.stdout, indent=2)
            sys.stdout.write("\n")
            sys.stdout.flush()


def table(rows: Iterable[Mapping[str, object]]) -> str:
    """A plain-text table whose columns are the rows' keys, in order; what a host said shows its control
    characters as escapes (:func:`maasops.hosttext.clean`)."""
    rows = list(rows)
    if not rows:
        return "(nothing)"
    return tabulate([["" if v is None else clean(str(v)) for v in r.values()] for r in rows],
                    headers=list(rows[0].keys()), tablefmt="simple",
                    disable_numparse=True)


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def facts_json(facts: probe.HostFacts | BaseException) -> dict:
    """What the probe found on a host, or why it failed."""
    if isinstance(facts, BaseException):
        return {"status": "failed", "error": str(facts)}
    data = asdict(facts)
    data["status"] = "ok"
    return data


def verify_json(sc: verify.SetCheck) -> dict:
    """A set check as a JSON document."""
    return {"operation": "verify", "set": str(sc.set_dir.absolute()), "status": "ok" if sc.ok else "failed",
            "exit_code": OK if sc.ok else FAILED,
            "problems": sc.problems, "notes": sc.notes,
            "hosts": {h.host: {"ok": h.ok, "problems": h.problems, "notes": h.notes, "files": h.files,
                               "size": h.size} for h in sc.hosts.values()}}
