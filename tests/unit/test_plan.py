"""Plans as data: a step's id apart from its label, and the printed plan showing every command a host will run."""

from __future__ import annotations

from maasops.command import Cmd, Q
from maasops.plan import STARTS, STOPS, HostPlan, Phase, Send, Step, StepId, render
from maasops.probe import HostFacts


def host_plan(steps=(), **kw) -> HostPlan:
    facts = HostFacts("region1", "deb", "1:3.5.3-1", ("region", "rack"))
    return HostPlan("region1", facts, tuple(steps), **kw)


def test_every_step_id_is_its_own():
    values = [s.value for s in StepId]
    assert len(values) == len(set(values)) == len(StepId.__members__)  # no id is an alias of another


def test_the_downtime_window_opens_and_closes_by_id():
    assert STOPS == (StepId.STOP_UNITS, StepId.STOP_POSTGRESQL)
    assert STARTS == (StepId.CHECK_UNITS, StepId.START_POSTGRESQL)


def test_a_step_is_found_by_its_id_whatever_its_label():
    first = Step(StepId.STOP_UNITS, "stop the units (reworded)", Cmd("systemctl stop a"))
    again = Step(StepId.STOP_UNITS, "stop them again", Cmd("systemctl stop b"))
    p = host_plan([Step(StepId.DUMP, "dump", Cmd("pg_dump")), first, again])
    assert p.step(StepId.STOP_UNITS) is first
    assert p.step(StepId.ARCHIVE) is None


def test_render_shows_every_command_in_order_with_sudo_where_it_runs_as_root():
    steps = [Step(StepId.DB_CHECK, "check the database", Cmd("psql", "-c", Q("select 1")), sudo=False),
             Step(StepId.DUMP, "dump the database", Cmd("pg_dump", Q("maas db")), fetch="maasdb.sql.zst",
                  background=True),
             Step(StepId.ARCHIVE, "archive the trees", Cmd("tar", "-cf", "-", Q("/var/lib/maas")))]
    shown = render([host_plan(steps)]).splitlines()
    assert shown == [
        "== region1 (deb 3.5, region+rack)",
        "   1. check the database: psql -c 'select 1'",
        "   2. dump the database (alongside the next steps): sudo pg_dump 'maas db'  > region1/maasdb.sql.zst",
        "   3. archive the trees: sudo tar -cf - /var/lib/maas",
    ]


def test_render_heads_each_phase_once_and_shows_what_goes_up_and_what_undoes():
    send = Send("/backups/set/region1/maasdb.sql.zst")
    member = Send("/backups/set/region1/config.tar.zst", member="etc/maas/regiond.conf", compress="zstd")
    steps = [Step(StepId.UPLOAD_DUMP, "upload the dump", Cmd("cat", ">", Q("/x")), Phase.UPLOAD, send=send),
             Step(StepId.UPLOAD_ARCHIVE, "upload the config", Cmd("cat", ">", Q("/y")), Phase.UPLOAD, send=member),
             Step(StepId.STOP_UNITS, "stop the units", Cmd("systemctl stop maas-regiond"), Phase.STOP,
                  undo=Cmd("systemctl start maas-regiond")),
             Step(StepId.LOAD_DATABASE, "load", Cmd("psql"), Phase.DATABASE, password_file="/home/op/db.pass")]
    shown = render([host_plan(steps)]).splitlines()
    assert shown[1:] == [
        "   [upload]",
        "   1. upload the dump: sudo cat > /x  < /backups/set/region1/maasdb.sql.zst",
        "   2. upload the config: sudo cat > /y  < /backups/set/region1/config.tar.zst:/etc/maas/regiond.conf",
        "   [stop]",
        "   3. stop the units: sudo systemctl stop maas-regiond",
        "      on any failure after this: systemctl start maas-regiond",
        "   [database]",
        "   4. load: sudo psql  (PGPASSWORD from /home/op/db.pass)",
    ]


def test_render_shows_a_refusal_and_notes_and_every_host():
    refused = HostPlan("rack2", HostFacts("rack2", None, None), error="no MAAS installed")
    noted = host_plan([Step(StepId.PRUNE, "prune", Cmd("rm", "-rf", Q("/old")))], notes=("images are not backed up",))
    no_role = HostPlan("rack3", HostFacts("rack3", "snap", "3.4.2-14353-g.abc"))
    assert render([noted, refused, no_role]).splitlines() == [
        "== region1 (deb 3.5, region+rack)",
        "   1. prune: sudo rm -rf /old",
        "   note: images are not backed up",
        "== rack2",
        "   REFUSED: no MAAS installed",
        "== rack3 (snap 3.4, no role)",
    ]


def test_a_file_sent_from_a_sets_files_is_shown_with_them():
    class Files:
        def __str__(self) -> str:
            return "restic:/srv/repo"

    assert str(Send("region1/maasdb.sql", files=Files())) == "restic:/srv/repo:region1/maasdb.sql"
    assert str(Send("region1/c.tar", member="etc/x", files=Files())) == "restic:/srv/repo:region1/c.tar:/etc/x"
