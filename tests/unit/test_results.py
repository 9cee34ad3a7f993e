"""One result type and one set of exit codes: restic's codes only where restic itself said why."""

from __future__ import annotations

from pathlib import Path

import pytest

from maasops import results
from maasops.results import (
    FAILED,
    INTERRUPTED,
    NO_REPOSITORY,
    OK,
    PARTIAL,
    REFUSED,
    REPOSITORY_LOCKED,
    WRONG_PASSWORD,
    HostResult,
    RunResult,
    code_for,
)


def restic_failed(said: str, verb: str = "snapshots") -> str:
    """A failure as maasops.repo quotes restic's own words."""
    return f"restic {verb} on /srv/backups/repo failed: {said}"


@pytest.mark.parametrize("said,code", [
    ("Fatal: unable to open config file: stat /srv/backups/repo/config: no such file or directory / "
     "Is there a repository at the following location? / /srv/backups/repo", NO_REPOSITORY),
    ("Fatal: repository does not exist: unable to open config file", NO_REPOSITORY),
    ("unable to create lock in backend: repository is already locked by PID 1 on laptop by root", REPOSITORY_LOCKED),
    ("the `unlock` command can be used to remove stale locks", REPOSITORY_LOCKED),
    ("Fatal: wrong password or no key found", WRONG_PASSWORD),
])
@pytest.mark.parametrize("ended", [FAILED, REFUSED])
def test_a_failure_quoting_restic_ends_with_restics_code(said, code, ended):
    assert code_for(ended, restic_failed(said)) == code
    assert code_for(ended, f"backup of region1 stopped: {restic_failed(said, 'cat')}") == code
    # as maasops.repo quotes a file stored into the repository, or dumped from it
    assert code_for(ended, f"restic backup of dc1/1/region1/config.tar.gz into /srv/r failed: {said}") == code
    assert code_for(ended, f"restic dump of dc1/1/region1/config.tar.gz from /srv/r failed: {said}") == code


def test_restics_codes_are_restics_own():
    """restic/cmd/restic/main.go: 10 no repository, 11 locked, 12 wrong password; 3 a partial backup."""
    assert (NO_REPOSITORY, REPOSITORY_LOCKED, WRONG_PASSWORD, PARTIAL) == (10, 11, 12, 3)
    assert (OK, FAILED, REFUSED, INTERRUPTED) == (0, 1, 2, 130)


@pytest.mark.parametrize("error", [
    "region1: dump: pg_dump said: repository does not exist",  # a host's words, no restic quoted
    "region1: archive: tar: wrong password or no key found",
    "region1: probe: Is there a repository at the following location?",
    # a host's words before restic's quote are not restic's
    "region1: dump: repository is already locked; " + restic_failed("Fatal: some other trouble"),
])
def test_a_hosts_words_never_give_restics_code(error):
    assert code_for(FAILED, error) == FAILED
    assert code_for(REFUSED, error) == REFUSED


def test_restic_saying_something_else_keeps_the_code():
    assert code_for(FAILED, restic_failed("Fatal: disk full")) == FAILED


@pytest.mark.parametrize("code", [OK, PARTIAL, INTERRUPTED])
def test_only_a_failure_or_a_refusal_is_given_restics_code(code):
    assert code_for(code, restic_failed("Fatal: wrong password or no key found")) == code


@pytest.mark.parametrize("code,status", [(OK, "ok"), (FAILED, "failed"), (REFUSED, "refused"), (PARTIAL, "partial"),
                                         (INTERRUPTED, "interrupted"), (NO_REPOSITORY, "no repository"),
                                         (REPOSITORY_LOCKED, "repository locked"),
                                         (WRONG_PASSWORD, "wrong repository password"), (99, "failed")])
def test_status_says_what_the_code_means(code, status):
    assert RunResult("backup", code).status == status


def test_a_dry_run_says_planned_whatever_its_code():
    assert RunResult("restore", OK, details={"status": "planned"}).status == "planned"


def test_to_json_is_the_whole_result_with_hosts_sorted_and_the_set_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = RunResult("backup", PARTIAL, set_dir=Path("backups/maas/set1"), error="rack1 failed",
                  details={"status": "partial", "downtime": 4.5})
    r.hosts["rack1"] = HostResult("rack1", "failed", error="boom")
    r.hosts["region1"] = HostResult("region1", "ok", size=10, duration=1.5, downtime=2.0, manual=["systemctl start x"])
    doc = r.to_json()
    assert list(doc) == ["operation", "status", "exit_code", "set", "error", "hosts", "downtime"]
    assert doc["operation"] == "backup" and doc["status"] == "partial" and doc["exit_code"] == PARTIAL
    assert doc["set"] == str(tmp_path / "backups/maas/set1") and doc["error"] == "rack1 failed"
    assert list(doc["hosts"]) == ["rack1", "region1"]
    assert doc["hosts"]["region1"] == {"host": "region1", "status": "ok", "source": "", "size": 10, "duration": 1.5,
                                       "downtime": 2.0, "error": "", "manual": ["systemctl start x"]}
    assert doc["downtime"] == 4.5


def test_to_json_of_a_run_without_a_set():
    assert RunResult("rollback", FAILED).to_json() == {"operation": "rollback", "status": "failed", "exit_code": 1,
                                                        "set": None, "error": "", "hosts": {}}


def test_refused_is_a_run_that_stopped_before_touching_anything():
    r = results.refused("restore", "no such set", hint="maasops list")
    assert (r.operation, r.code, r.status, r.error, r.hosts) == ("restore", REFUSED, "refused", "no such set", {})
    assert r.to_json()["hint"] == "maasops list"
