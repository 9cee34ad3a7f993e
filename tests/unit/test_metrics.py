"""``--metrics-file``: the last run's outcome per operation and deployment, as the node exporter reads it."""

from __future__ import annotations

from maasops import metrics
from maasops.results import FAILED, OK, REFUSED, HostResult, RunResult
from tests.builders import samples


def backup_result(code: int, sizes: dict[str, int], failed: tuple[str, ...] = ()) -> RunResult:
    return RunResult("backup", code, {h: HostResult(h, "FAILED" if h in failed else "ok", size=n)
                                      for h, n in sizes.items()})


def test_a_run_replaces_its_own_lines_and_keeps_the_others(tmp_path):
    prom = tmp_path / "maasops.prom"
    metrics.write(prom, backup_result(OK, {"region1": 300, "rack1": 20}), "dc1")
    metrics.write(prom, backup_result(FAILED, {"region1": 0, "rack1": 20}, failed=("region1",)), "dc2")
    metrics.write(prom, RunResult("restore", REFUSED, error="set does not verify"), "dc1")
    first = samples(prom.read_text())
    assert first[("maasops_last_run_success", "backup", "dc1")] == 1
    assert first[("maasops_last_run_bytes", "backup", "dc1")] == 320
    assert first[("maasops_last_run_exit_code", "backup", "dc2")] == FAILED
    assert first[("maasops_last_run_hosts_failed", "backup", "dc2")] == 1
    assert first[("maasops_last_run_exit_code", "restore", "dc1")] == REFUSED
    assert first[("maasops_last_run_success", "restore", "dc1")] == 0

    metrics.write(prom, backup_result(OK, {"region1": 310, "rack1": 20}), "dc2")
    second = samples(prom.read_text())
    assert second[("maasops_last_run_exit_code", "backup", "dc2")] == OK
    assert second[("maasops_last_run_hosts_failed", "backup", "dc2")] == 0
    assert second[("maasops_last_run_timestamp_seconds", "backup", "dc2")] >= \
        first[("maasops_last_run_timestamp_seconds", "backup", "dc2")]
    assert {k: v for k, v in second.items() if k[2] == "dc1"} == {k: v for k, v in first.items() if k[2] == "dc1"}
    assert len(second) == 3 * len(metrics.METRICS)  # backup/dc1, backup/dc2, restore/dc1
    assert prom.stat().st_mode & 0o777 == 0o644  # the exporter runs as its own user
    assert [p.name for p in tmp_path.iterdir()] == ["maasops.prom"]  # written whole, then renamed


def test_a_deployment_name_cannot_break_the_file(tmp_path):
    prom = tmp_path / "maasops.prom"
    metrics.write(prom, backup_result(OK, {"region1": 1}), 'dc"1\\\nx')
    metrics.write(prom, backup_result(OK, {"region1": 2}), "dc2")
    got = samples(prom.read_text())
    assert got[("maasops_last_run_bytes", "backup", 'dc\\"1\\\\\\nx')] == 1  # escaped as Prometheus wants
    assert got[("maasops_last_run_bytes", "backup", "dc2")] == 2
