"""What went wrong on a host, in words naming the host, the step and the fix: SSH failures explained.

The jump host's failures are tests/unit/test_jump.py's; these are the direct connection's. No host is contacted.
"""

from __future__ import annotations

import paramiko
import pytest

from maasops import connect, errors
from maasops.errors import (
    CHANGED_KEY_HINT,
    DAMAGED,
    REVOKED_KEY_HINT,
    UNKNOWN_KEY_HINT,
    Damaged,
    HostKeyRefused,
    RemoteError,
    TooBig,
    connect_error,
)


class Key:
    """Enough of a paramiko key for BadHostKeyException."""

    def __init__(self, b64: str):
        self.b64 = b64

    def get_base64(self) -> str:
        return self.b64


@pytest.fixture
def conn(tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host region1\n    HostName 10.0.0.11\n    User ubuntu\n")
    return connect.connection("region1", connect.with_ssh_config(connect.fabric_config(connect_timeout=7), cfg))


def test_a_remote_error_names_the_host_the_step_and_the_fix():
    err = RemoteError("region1", "dump", "pg_dump: connection refused", "start postgresql")
    assert str(err) == "region1: dump: pg_dump: connection refused (start postgresql)"
    assert (err.host, err.step, err.detail, err.hint) == ("region1", "dump", "pg_dump: connection refused",
                                                          "start postgresql")
    assert str(RemoteError("region1", "dump", "exit 1")) == "region1: dump: exit 1"


def test_what_a_host_said_is_shown_never_run():
    err = RemoteError("region1", "probe", "bad\x1b[2J", "hint\x07")
    assert str(err) == "region1: probe: bad\\x1b[2J (hint\\x07)" and err.detail == "bad\\x1b[2J"


def test_too_big_damaged_and_unsafe_say_what_they_are():
    assert str(TooBig(1024)) == "more than 1024 bytes" and TooBig(1024).limit == 1024
    assert str(Damaged()) == DAMAGED and "maasops verify" in DAMAGED
    assert issubclass(errors.Unsafe, ValueError) and issubclass(TooBig, ValueError)


def test_a_refused_host_key_is_an_ssh_failure_naming_host_and_why():
    exc = HostKeyRefused("10.0.0.11", "revoked")
    assert isinstance(exc, paramiko.SSHException)
    assert str(exc) == "revoked host key for 10.0.0.11" and (exc.hostname, exc.why) == ("10.0.0.11", "revoked")


def test_a_remote_error_is_passed_through_as_it_is(conn):
    err = RemoteError("region1", "probe", "x")
    assert connect_error(conn, "backup", err) is err


@pytest.mark.parametrize("exc", [paramiko.BadHostKeyException("10.0.0.11", Key("AAAAnew"), Key("AAAAold")),
                                 HostKeyRefused("10.0.0.11", "changed")])
def test_a_changed_host_key_is_called_a_possible_attack(conn, exc):
    err = connect_error(conn, "probe", exc)
    assert str(err) == f"region1: probe: host key CHANGED since it was recorded in known_hosts ({CHANGED_KEY_HINT})"
    assert "never just delete the line" in err.hint


def test_a_revoked_host_key_says_not_to_connect(conn):
    err = connect_error(conn, "probe", HostKeyRefused("10.0.0.11", "revoked"))
    assert str(err) == f"region1: probe: host key is REVOKED in known_hosts ({REVOKED_KEY_HINT})"


@pytest.mark.parametrize("exc", [HostKeyRefused("10.0.0.11", "unknown"),
                                 paramiko.SSHException("Server '10.0.0.11' not found in known_hosts")])
def test_an_unknown_host_key_says_how_to_add_it(conn, exc):
    err = connect_error(conn, "probe", exc)
    assert str(err) == f"region1: probe: unknown host key (not in known_hosts) ({UNKNOWN_KEY_HINT})"
    assert "--accept-new-host-keys" in err.hint


def test_failed_authentication_names_the_user(conn):
    err = connect_error(conn, "probe", paramiko.AuthenticationException("Authentication failed."))
    assert err.detail == "SSH authentication failed as ubuntu"
    assert err.hint == "check the user and key in the inventory or ssh config"


@pytest.mark.parametrize("said", ["Error reading SSH protocol banner", "No existing session"])
def test_a_port_that_never_speaks_ssh_is_named_with_the_wait(conn, said):
    err = connect_error(conn, "probe", paramiko.SSHException(said))
    assert err.detail == "10.0.0.11:22 accepted the connection but no SSH server answered within 7 s"
    assert "not another service, listens there" in err.hint


@pytest.mark.parametrize("exc", [TimeoutError("timed out"), TimeoutError()])
def test_a_timeout_names_the_address(conn, exc):
    err = connect_error(conn, "probe", exc)
    assert str(err) == "region1: probe: timed out connecting to 10.0.0.11:22 (check the address, the bastion and " \
                       "firewalls)"


def test_anything_else_says_the_host_cannot_be_reached_and_why(conn):
    err = connect_error(conn, "probe", ConnectionRefusedError(111, "Connection refused"))
    assert err.detail == "cannot reach 10.0.0.11:22: [Errno 111] Connection refused"
    assert "bastion" in err.hint and "sshd" in err.hint


def test_the_host_is_named_as_the_user_gave_it(conn):
    assert errors.host_label(conn) == "region1" and conn.host == "10.0.0.11"
    assert connect_error(conn, "probe", TimeoutError()).host == "region1"
