"""The ``maasops`` command: a Fabric program with maasops's own tasks, run from any directory.

Invoke documents this for distinct binaries: a ``Program`` with a fixed namespace
instead of a tasks file found by walking up from the current directory. On top of
Fabric's ``fab``:

- ``-h``/``--help`` print a task's help wherever they stand (before or after the task
  name, even where Invoke would take them for a value) and never run anything;
  ``maasops help [TASK]`` and ``maasops version`` too; ``--list`` keeps the runbook's order;
- a command line that does not parse, or whose values cannot work (``-H ,,``, ``-S`` naming
  no file, ``--prompt-for-sudo-password`` without a terminal, a flag's value), is refused
  with exit code 2 and a message naming the flag or file; with ``--json`` stdout still
  carries one JSON document, whatever ends the run;
- Ctrl-C and SIGTERM end the command with exit code 130; an error maasops did not
  foresee is one line (``-v`` shows its traceback), never a traceback;
- ``-q/--quiet`` and ``-v/--verbose``; Fabric's flags that mean nothing to maasops
  (``--hide``, ``--write-pyc``, ``-p``, ``-R``, ``-w``) are gone.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import traceback
from pathlib import Path

from fabric import Config, Executor
from fabric.connection import derive_shorthand
from fabric.main import Fab
from invoke import Argument, Exit, ParseError, UnexpectedExit

from maasops import __version__, output
from maasops.commands.fleet_request import DOCUMENTS_KEY, VERBOSITY_KEY
from maasops.namespace import RUNBOOK, ns
from maasops.options import HELP_WORDS, OptionError, help_asked, task_help
from maasops.repo import describe_installed
from maasops.results import FAILED, INTERRUPTED, REFUSED, RunResult

# Invoke's and Fabric's core flags that run no shell command of maasops's: not offered.
DROPPED = ("hide", "write-pyc", "pty", "dry", "warn-only")
OWN = (Argument(names=("quiet", "q"), kind=bool, help="Print only warnings, errors and the JSON document."),
       Argument(names=("verbose", "v"), kind=bool, help="Also print what SSH says, and the traceback of an "
                                                        "error maasops did not foresee."))
# Words that stand for a flag: ``maasops help backup``, ``maasops version``.
WORDS = {"help": "--help", "version": "--version"}


class Maasops(Fab):
    """``fab`` with maasops's namespace, help anywhere, refusals that name the flag, and the runbook's order."""

    def core_args(self) -> list[Argument]:
        """Fabric's core flags without the ones maasops has no use for, and ``-q``, ``-v``."""
        return [a for a in super().core_args() if a.name not in DROPPED] + [Argument(names=a.names, kind=a.kind,
                                                                                     help=a.help) for a in OWN]

    def run(self, argv: list[str] | str | None = None, exit: bool = True) -> None:
        """Run the command line; one asking for help prints it and runs nothing."""
        args = list(sys.argv if argv is None else argv.split() if isinstance(argv, str) else argv)
        self.json_wanted = "--json" in args[1:]
        self.documents = output.Documents()  # this run's: every task's Output counts the documents it printed
        self.operation = next((a for a in args[1:] if a in self.namespace.task_names), None)
        if len(args) > 1 and args[1] in WORDS:
            unknown = [a for a in args[2:] if a not in self.namespace.task_names and not a.startswith("-")]
            if unknown:
                code = self._ended(REFUSED, f"{self.binary} {args[1]}: no task {unknown[0]!r} (maasops --list)")
                if exit:
                    sys.exit(code)
                return
            args = [args[0], *args[2:], WORDS[args[1]]]
        name = help_asked(args[1:], self.namespace)
        if name:
            print(task_help(self.namespace, name, self.binary))
            return
        if "--complete" not in args and any(a in HELP_WORDS for a in args[1:]):
            args = [args[0], "--help"]
        code = self._run(args)
        if code and exit:
            sys.exit(code)

    def _run(self, args: list[str]) -> int:
        """Invoke's steps (``Program.run``); what ends them is an exit code, a message and a document."""
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.create_config()
            self.parse_core(args)
            self.parse_collection()
            self.parse_tasks()
            self.parse_cleanup()
            self.update_config()
            self.execute()
            return 0
        except Exit as exc:
            code, message = exc.code, exc.message or ""
        except ParseError as exc:
            code, message = REFUSED, f"{self.binary}: {exc}"
        except UnexpectedExit as exc:
            code, message = exc.result.exited or FAILED, str(exc)
        except KeyboardInterrupt:
            code, message = INTERRUPTED, "interrupted"
        except BrokenPipeError:
            code, message = _reader_gone(), ""
        except Exception as exc:  # noqa: BLE001 - the one place an unforeseen error becomes a message, not a traceback
            if self._verbose():
                traceback.print_exc()
            code, message = FAILED, f"{self.binary}: error: {type(exc).__name__}: {exc}"
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self._ended(code, message)

    def _ended(self, code: int, message: str) -> int:
        """The run's last words: the message on stderr, and (``--json``) its document when none was printed."""
        if message:
            print(message, file=sys.stderr, flush=True)
        if code and self.json_wanted and not self.documents.printed:
            doc = RunResult(self.operation or "", code, error=message).to_json()
            json.dump(doc, sys.stdout, indent=2)
            print(flush=True)
        return code

    def _verbose(self) -> bool:
        core = getattr(self, "core", None)
        return bool(core and core[0].args.verbose.value)

    def parse_core_args(self) -> None:
        """Invoke's parsing of the core flags; the flags maasops dropped read as not given."""
        super().parse_core_args()
        for name in DROPPED:
            self.core[0].args[name] = Argument(names=(name,), kind=bool)

    def parse_core(self, argv: list[str] | None) -> None:
        """Fabric's parsing of core flags; a command line it cannot parse, or whose values cannot work, is
        refused with exit code 2."""
        try:
            super().parse_core(argv)
        except (ParseError, ValueError) as exc:  # Invoke casts an int flag's value unguarded
            raise Exit(f"{self.binary}: {exc}", code=REFUSED) from None
        problem = core_problem(self.args)
        if problem:
            raise Exit(f"{self.binary}: {problem}", code=REFUSED)
        if not self.args.verbose.value:
            logging.getLogger("paramiko").addHandler(logging.NullHandler())  # its tracebacks: -v only
            logging.getLogger("paramiko").propagate = False

    def parse_tasks(self) -> None:
        """Invoke's parsing of the tasks and their flags; a command line it cannot parse is refused (exit 2)."""
        try:
            super().parse_tasks()
        except (ParseError, ValueError) as exc:  # Invoke casts an int flag's value unguarded
            raise Exit(f"{self.binary}: {exc}", code=REFUSED) from None
        for ctx in self.tasks:  # each task checks its options again when it runs (fab in the checkout)
            spec = getattr(self.collection[ctx.name], "spec", None)
            try:
                if spec:
                    spec.parse({a.attr_name or a.name: a.value for a in ctx.args.values()})
            except OptionError as exc:
                raise Exit(f"{self.binary} {spec.name}: {exc}", code=REFUSED) from None

    def update_config(self) -> None:
        """Fabric's config from the core flags; -q/-v and the run's document count for the tasks."""
        try:
            super().update_config()
        except (EOFError, OSError) as exc:  # a prompt without a terminal, an ssh_config that cannot be read
            raise Exit(f"{self.binary}: {exc or 'no answer to the prompt'}", code=REFUSED) from None
        self.config[VERBOSITY_KEY] = -1 if self.args.quiet.value else 1 if self.args.verbose.value else 0
        self.config[DOCUMENTS_KEY] = self.documents

    def print_version(self) -> None:
        """maasops's version and Fabric's, then the restic a ``--repo`` uses and the paths it gets."""
        super().print_version()
        print(describe_installed())

    def print_task_help(self, name: str) -> None:
        """A task's help (``maasops --help=TASK``), the same text as ``maasops TASK --help``."""
        print(task_help(self.collection, name, self.binary))

    def _make_pairs(self, coll, ancestors=None):
        pairs = super()._make_pairs(coll, ancestors)
        order = {name: i for i, name in enumerate(RUNBOOK)}
        return sorted(pairs, key=lambda p: (order.get(p[0].split(",")[0].strip(), len(order)), p[0]))


def _reader_gone() -> int:
    """Whoever read stdout went away (``maasops --list | head``): nothing more goes there, and no error is shown."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return FAILED


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def host_problem(host: str) -> str | None:
    """Why one ``-H`` entry (``[user@]host[:port]``) cannot be reached, or None."""
    if not host.strip():
        return "-H: an empty host name (-H host1,host2,...)"
    try:
        parts = derive_shorthand(host)
    except ValueError:
        return f"-H {host!r}: the port is not a number ([user@]host[:port])"
    if not parts["host"] or (parts["port"] is not None and not 0 < parts["port"] < 65536):
        return f"-H {host!r}: not [user@]host[:port] with a port from 1 to 65535"
    return None


def core_problem(args) -> str | None:
    """Why the core flags cannot work: -H, -S, -i, -t, --prompt-for-sudo-password (None when they can)."""
    hosts = args.hosts.value
    if hosts is not None:
        for host in hosts.split(","):
            problem = host_problem(host)
            if problem:
                return problem
    path = args["ssh-config"].value
    if path is not None and not Path(path).expanduser().is_file():
        return f"-S {path}: no such file"
    for key in args.identity.value or []:
        if not Path(key).expanduser().is_file():
            return f"-i {key}: no such file"
    timeout = args["connect-timeout"].value
    if timeout is not None and timeout < 1:
        return f"-t {timeout}: the connect timeout is at least 1 second"
    prompts = [f for f in ("prompt-for-sudo-password", "prompt-for-login-password", "prompt-for-passphrase")
               if args[f].value]
    if prompts and not sys.stdin.isatty():
        return (f"--{prompts[0]}: stdin is not a terminal, so there is no one to ask (give an inventory's hosts a "
                "sudo_password_file instead)")
    return None


program = Maasops(name="maasops", binary="maasops", version=__version__, namespace=ns, executor_class=Executor,
                  config_class=Config)


def main() -> None:
    """The console script's entry point. Interrupted, it exits at once: a worker thread still waiting for a host
    (an SSH banner that never comes) does not hold the command up."""
    try:
        program.run()
    except BrokenPipeError:  # help and lists are printed outside the run's steps
        sys.exit(_reader_gone())
    except SystemExit as exc:
        if exc.code == INTERRUPTED:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(INTERRUPTED)
        raise
