"""The OpenSSH jump: the ssh command it builds, the socket it gives paramiko, its errors explained.

No host is contacted here; tests/lab/test_lab.py and every lab test go through the lab's
bastion this way.
"""

import sys

import pytest

from maasops import connect, errors, jump


def lab_like_config(tmp_path, extra=""):
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host bastion\n    HostName 10.0.0.2\n    User admin\n    Port 2200\n"
                   "Host region1\n    HostName 10.0.0.11\n    ProxyJump bastion\n    User ubuntu\n" + extra)
    return connect.with_ssh_config(connect.fabric_config(connect_timeout=7), cfg), cfg


def test_a_proxyjump_target_reaches_its_bastion_through_ssh_w(tmp_path):
    config, path = lab_like_config(tmp_path)
    c = connect.connection("region1", config)
    argv = jump.jump_argv(c.gateway, c.host, c.port)
    assert argv[:3] == ["ssh", "-F", str(path)]
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv and "ConnectTimeout=7" in argv
    assert argv[argv.index("-l") + 1] == "admin" and argv[argv.index("-p") + 1] == "2200"
    assert argv[-4:] == ["-W", "10.0.0.11:22", "--", "bastion"]
    assert c.open_gateway.__qualname__.startswith("via_openssh")


def test_an_inventory_gateway_with_user_and_port_and_accept_new(tmp_path):
    config, _ = lab_like_config(tmp_path)
    c = connect.connection("10.0.0.12", config, port=2222, gateway="ops@jump1:2022", accept_new_host_keys=True)
    argv = jump.jump_argv(c.gateway, c.host, c.port, accept_new=True)
    assert "StrictHostKeyChecking=accept-new" in argv
    assert argv[argv.index("-l") + 1] == "ops" and argv[argv.index("-p") + 1] == "2022"
    assert argv[-4:] == ["-W", "10.0.0.12:2222", "--", "jump1"]


def test_a_gateway_that_needs_a_password_keeps_fabrics_hop(tmp_path):
    config, _ = lab_like_config(tmp_path)
    c = connect.connection("region1", config)
    assert jump.usable(c.gateway)
    c.gateway.connect_kwargs["password"] = "secret"
    assert not jump.usable(c.gateway) and not jump.usable(None)


def test_the_socket_carries_bytes_and_closing_it_ends_the_process():
    sock = jump.JumpSocket([sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read(5))"], "gw")
    sock.send(b"hello")
    assert sock.recv(5) == b"hello"
    sock.close()
    assert sock.closed and sock.process.returncode == 0


def test_ssh_failing_raises_its_own_words():
    script = "import sys; sys.stderr.write('Permission denied (publickey).\\n'); sys.exit(255)"
    sock = jump.JumpSocket([sys.executable, "-c", script], "bastion")
    with pytest.raises(jump.JumpFailed) as err:
        sock.recv(10)
    sock.close()
    assert str(err.value) == "jump host bastion: Permission denied (publickey)."


@pytest.mark.parametrize("stderr,says", [
    ("No ED25519 host key is known for 10.0.0.2 / Host key verification failed.",
     "unknown host key of jump host bastion"),
    ("@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @ / Host key verification failed.",
     "host key of jump host bastion CHANGED"),
    ("ubuntu@10.0.0.2: Permission denied (publickey).", "SSH authentication failed at jump host bastion"),
    ("ssh: connect to host 10.0.0.2 port 22: Connection timed out", "timed out connecting to jump host bastion"),
    ("channel 0: open failed: connect failed: No route to host / stdio forwarding failed",
     "cannot reach 10.0.0.11:22 through jump host bastion: channel 0"),
])
def test_jump_failures_are_explained_naming_the_host_and_the_jump_host(tmp_path, stderr, says):
    config, _ = lab_like_config(tmp_path)
    err = errors.connect_error(connect.connection("region1", config), "probe", jump.JumpFailed("bastion", stderr))
    assert str(err).startswith(f"region1: probe: {says}")
