"""A secret's file (an age identity, a sudo password) readable by others is refused, naming the file and its mode
(issue 24)."""

from __future__ import annotations

import pyrage
import pytest

from maasops import crypto, fleet
from maasops.connect import fabric_config
from maasops.inventory import Deployment, InventoryError, InventoryHost


def test_an_identity_others_can_read_is_refused_naming_the_file_and_mode(tmp_path):
    key = tmp_path / "key.txt"
    key.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    key.chmod(0o644)
    with pytest.raises(crypto.CryptoError, match=r"key.txt is readable by others \(mode 0644\)"):
        crypto.identities(key)
    key.chmod(0o600)
    assert len(crypto.identities(key)) == 1


def test_a_sudo_password_file_others_can_read_is_refused_naming_the_file_and_mode(tmp_path):
    pw = tmp_path / "sudo_password"
    pw.write_text("secret\n")
    pw.chmod(0o640)
    dep = Deployment("d", (InventoryHost("region1", ("region",), "10.0.0.1", sudo_password_file=pw),))
    with pytest.raises(InventoryError, match=r"region1: sudo password file .*sudo_password is readable by others "
                                             r"\(mode 0640\)"):
        fleet.from_deployment(dep, fabric_config())
    pw.chmod(0o600)
    [t] = fleet.from_deployment(dep, fabric_config())
    assert t.connection.config.sudo.password == "secret"
