"""The one option table: no task flag collides with a core flag, a short flag means the same in every task."""

from __future__ import annotations

from fabric.main import program as fab_program

from maasops import options
from maasops.namespace import SPECS, ns
from maasops.program import program

TASKS = sorted(ns.task_names)


def core_names() -> set[str]:
    """Every flag name of ``fab``'s and ``maasops``'s own parsers (-c, -r only exist for ``fab``)."""
    args = fab_program.core_args() + fab_program.task_args() + program.core_args()
    return {n for a in args for n in a.names}


def task_flags() -> dict[str, dict[str, tuple[str, ...]]]:
    """Per task, each flag name -> every name of that argument."""
    return {t: {n: a.names for a in ns[t].get_arguments() for n in a.names} for t in TASKS}


def test_no_task_flag_collides_with_a_core_flag():
    core = core_names()
    assert {"c", "d", "D", "e", "f", "F", "h", "H", "i", "l", "p", "r", "R", "S", "t", "T", "V", "w"} <= core
    assert set(options.CORE_SHORT_FLAGS) <= core
    for task, flags in task_flags().items():
        assert not set(flags) & core, task


def test_a_short_flag_means_the_same_in_every_task():
    meaning: dict[str, tuple[str, ...]] = {}
    for flags in task_flags().values():
        for name, names in flags.items():
            if len(name) == 1:
                assert meaning.setdefault(name, names) == names, name
    assert meaning["s"] == ("backup-set", "s") and meaning["I"] == ("inventory", "I")
    for o in options.OPTIONS.values():
        assert o.short is None or (len(o.short) == 1 and o.short not in options.CORE_SHORT_FLAGS), o.name


def test_an_option_not_given_is_its_tables_default_a_switch_on_by_default_included(tmp_path):
    spec = next(s for s in SPECS if s.name == "restore")
    opts = spec.parse({"backup_set": str(tmp_path)})
    assert opts.rollback_copy is options.OPTIONS["rollback_copy"].default is True
    assert opts.keep == options.OPTIONS["keep"].default and opts.json is False
