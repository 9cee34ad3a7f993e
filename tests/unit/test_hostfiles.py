"""Safe file edits on a host (issue 24): a root write never follows a symbolic link on its way; a file's mode stays."""

from __future__ import annotations

import subprocess

from maasops.hostfiles import copy_yaml_keys, replace_yaml_key


def _sh(cmd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", str(cmd)], capture_output=True, text=True)


def test_root_writes_never_follow_a_link(tmp_path):
    tree = tmp_path / "etc/maas"
    tree.mkdir(parents=True)
    issue = tmp_path / "etc/issue"
    issue.write_text("Ubuntu\n")
    (tree / "l2").symlink_to(".")
    (tree / "rackd.conf").symlink_to("l2/../../issue")
    r = _sh(replace_yaml_key(str(tree), str(tree / "rackd.conf"), "maas_url", "maas_url: http://x/\n"))
    assert r.returncode == 1 and "rackd.conf is a symbolic link" in r.stderr
    (tree / "sub").symlink_to(tmp_path / "etc")
    r = _sh(copy_yaml_keys(str(tree), str(tmp_path / "src"), str(tree / "sub/issue"), ("maas_url",)))
    (tmp_path / "src").write_text("maas_url: http://y/\n")
    r = _sh(copy_yaml_keys(str(tree), str(tmp_path / "src"), str(tree / "sub/issue"), ("maas_url",)))
    assert r.returncode == 1 and "sub is a symbolic link" in r.stderr
    assert issue.read_text() == "Ubuntu\n"
    conf = tree / "regiond.conf"
    conf.write_text("maas_url: http://old/\ndatabase_host: a\n")
    conf.chmod(0o640)
    r = _sh(replace_yaml_key(str(tree), str(conf), "database_host", "database_host: b\n"))
    assert r.returncode == 0, r.stderr
    assert conf.read_text() == "maas_url: http://old/\ndatabase_host: b\n" and conf.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tree.iterdir()) == ["l2", "rackd.conf", "regiond.conf", "sub"]
