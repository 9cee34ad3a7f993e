"""What a command shows (maasops.output): words on stdout, or on stderr with --json so that stdout carries one
document alone; -q leaves out all but warnings; a table shows what a host said as escapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maasops import output, verify
from tests.builders import facts


def test_text_mode_says_on_stdout_and_warns_on_stderr(capsys):
    out = output.Output()
    out.say("backed up")
    out.warn("rack1 failed")
    got = capsys.readouterr()
    assert (got.out, got.err) == ("backed up\n", "rack1 failed\n")


def test_json_mode_keeps_stdout_for_the_document(capsys):
    out = output.Output(json_mode=True)
    out.say("backed up")
    out.warn("rack1 failed")
    assert not out.emitted
    out.emit({"operation": "backup", "set": Path("/b/x"), "hosts": {"rack1": {"size": 3}}})
    got = capsys.readouterr()
    assert got.err == "backed up\nrack1 failed\n"
    assert json.loads(got.out) == {"operation": "backup", "set": "/b/x", "hosts": {"rack1": {"size": 3}}}
    assert got.out.endswith("}\n") and out.emitted


@pytest.mark.parametrize("json_mode", [False, True])
def test_quiet_leaves_out_words_but_not_warnings_or_the_document(capsys, json_mode):
    out = output.Output(json_mode, verbosity=-1)
    out.say("backed up")
    out.warn("rack1 failed")
    out.emit({"operation": "backup"})
    got = capsys.readouterr()
    assert got.err == "rack1 failed\n"
    assert got.out == ('{\n  "operation": "backup"\n}\n' if json_mode else "")


def test_verbose_says_as_much_as_the_default(capsys):
    output.Output(verbosity=1).say("x")
    assert capsys.readouterr().out == "x\n"


def test_text_mode_emits_no_document_but_counts_it_handed_over(capsys):
    documents = output.Documents()
    out = output.Output(documents=documents)
    out.emit({"operation": "backup"})
    assert capsys.readouterr().out == "" and out.emitted and documents.printed == 0


def test_every_output_of_a_run_counts_in_its_one_documents(capsys):
    documents = output.Documents()
    for operation in ("probe", "backup"):
        output.Output(True, documents=documents).emit({"operation": operation})
    assert documents.printed == 2
    docs = capsys.readouterr().out.split("}\n")
    assert [json.loads(d + "}")["operation"] for d in docs if d] == ["probe", "backup"]


def test_a_table_has_the_rows_keys_as_columns_and_shows_values_as_text():
    text = output.table([{"host": "rack1", "size": "007", "error": None},
                         {"host": "region1", "size": "1e3", "error": "no\x1b[2Jspace"}])
    lines = text.splitlines()
    assert lines[0].split() == ["host", "size", "error"]
    assert lines[2].split() == ["rack1", "007"]  # a number-like string is not re-formatted; None is blank
    assert lines[3].split() == ["region1", "1e3", "no\\x1b[2Jspace"]
    assert "\x1b" not in text


def test_an_empty_table_says_so():
    assert output.table([]) == "(nothing)"
    assert output.table(iter(())) == "(nothing)"


@pytest.mark.parametrize("n, shown", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 << 20, "5.0 MiB"),
                                      (3 << 30, "3.0 GiB"), (2048 << 30, "2048.0 GiB")])
def test_human_bytes(n, shown):
    assert output.human_bytes(n) == shown


def test_facts_json_is_what_the_probe_found_or_why_it_failed():
    data = output.facts_json(facts("region1"))
    assert data["status"] == "ok" and data["host"] == "region1" and data["database"]["name"] == "maasdb"
    json.dumps(data)  # a document
    assert output.facts_json(OSError("no route to host")) == {"status": "failed", "error": "no route to host"}


def test_verify_json_reports_the_set_and_each_host(tmp_path):
    hosts = {"rack1": verify.HostCheck("rack1", files=2, size=10),
             "region1": verify.HostCheck("region1", problems=["dump.sql.gz: sha256 differs"], notes=["n"])}
    doc = output.verify_json(verify.SetCheck(tmp_path, None, hosts, notes=["signed"]))
    assert (doc["operation"], doc["set"], doc["status"], doc["exit_code"]) == ("verify", str(tmp_path), "failed", 1)
    assert doc["notes"] == ["signed"] and doc["problems"] == []
    assert doc["hosts"]["rack1"] == {"ok": True, "problems": [], "notes": [], "files": 2, "size": 10}
    assert doc["hosts"]["region1"]["ok"] is False
    ok = output.verify_json(verify.SetCheck(Path("rel"), None, {"rack1": hosts["rack1"]}))
    assert (ok["status"], ok["exit_code"], ok["set"]) == ("ok", 0, str(Path("rel").absolute()))
