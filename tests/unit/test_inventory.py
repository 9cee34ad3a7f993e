"""Inventory errors name file:line and nothing is contacted."""

import pytest

from maasops import inventory

GOOD = """\
deployment: dc1
defaults:
  user: ubuntu
  gateway: bastion
hosts:
  region1:
    roles: [region]
  rack1:
    roles: rack
    port: 2222
"""


def load(tmp_path, text):
    p = tmp_path / "inv.yaml"
    p.write_text(text)
    return inventory.load(p)


def test_good_inventory(tmp_path):
    dep = load(tmp_path, GOOD)
    assert dep.name == "dc1"
    assert dep.host("rack1").roles == ("rack",) and dep.host("rack1").port == 2222
    assert dep.host("region1").gateway == "bastion" and dep.host("region1").user == "ubuntu"


@pytest.mark.parametrize("text,line,words", [
    (GOOD.replace("roles: rack", "roles: compute"), 9, "unknown role 'compute'"),
    (GOOD + "  rack1:\n    roles: [rack]\n", 11, "duplicate key 'rack1'"),
    (GOOD.replace("roles: [region]", "roles: [rack]"), 6, "no region controller"),
    (GOOD.replace("  user: ubuntu", "  usr: ubuntu"), 3, "unknown key 'usr'"),
    (GOOD.replace("roles: [region]", "roles: [region"), 8, "YAML error"),
    (GOOD.replace("port: 2222", "port: many"), 10, "port"),
])
def test_errors_name_file_and_line(tmp_path, text, line, words):
    with pytest.raises(inventory.InventoryError) as err:
        load(tmp_path, text)
    assert f"inv.yaml:{line}:" in str(err.value) and words in str(err.value)
