"""Commands built from parts: syntax stays syntax, every value reaches the shell as one word of data.

What the shell receives is proved by running the rendered text with the local bash, as a host's shell runs it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from maasops.command import Cmd, Q, Word, group, pipe, seq, shell

HOSTILE = ["it's", 'say "hi"', "$(touch MARK)", "`touch MARK`", "a\nb; touch MARK", "-rf", "--help",
           "a b\tc", "", "*", "~root", "x;y&&z||w|v>u<t", "$HOME ${IFS}", "back\\slash", "é ünïcode", "{a,b}",
           "'; touch MARK; '", "#not a comment"]
EACH = "printf '<%s>\\n'"  # one <...> per argument the shell passes


def bash(command: Cmd | str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", str(command)], capture_output=True, text=True, timeout=30, **kw)


@pytest.mark.parametrize("template", HOSTILE)
def test_a_hostile_value_arrives_as_one_word_and_runs_nothing(tmp_path, template):
    mark = tmp_path / "ran"
    value = template.replace("MARK", str(mark))
    r = bash(Cmd(EACH, Q(value)), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"<{value}>\n"
    assert not mark.exists()


def test_values_of_any_type_are_quoted_as_their_text():
    assert str(Cmd("ls", Q(Path("/srv/a dir")), Q(5))) == "ls '/srv/a dir' 5"
    assert Q("plain").text() == "plain" and Q("a b").text() == "'a b'" and Q("").text() == "''"


def test_plain_strings_are_syntax_and_are_not_quoted():
    cmd = Cmd("tar", "-C", Q("/var/lib/maas"), "-cf", "-", ".", "2>", Q("/tmp/err log"))
    assert str(cmd) == "tar -C /var/lib/maas -cf - . 2> '/tmp/err log'"
    assert bash(Cmd("echo a", "&&", "echo b")).stdout == "a\nb\n"


@pytest.mark.parametrize("part", [5, None, b"rm", Path("/x"), ["ls"]])
def test_a_part_that_is_not_syntax_a_value_or_a_command_is_refused(part):
    with pytest.raises(TypeError, match="must be shell syntax"):
        Cmd("echo", part)


def test_a_nested_command_is_spliced_in_and_a_quoted_command_is_one_argument(tmp_path):
    inner = Cmd("echo", Q("a b"))
    assert str(Cmd("sudo", inner)) == "sudo echo 'a b'"
    assert str(Cmd("sudo", Q(inner))) == "sudo 'echo '\"'\"'a b'\"'\"''"
    assert bash(Cmd(EACH, Q(inner))).stdout == "<echo 'a b'>\n"


def test_empty_parts_leave_no_stray_spaces_and_an_empty_command_is_false():
    assert str(Cmd("a", "", Cmd(), "b")) == "a b"
    assert not Cmd() and Cmd("true")


def test_commands_are_equal_when_they_render_the_same():
    assert Cmd("echo", Q("x")) == Cmd("echo x") and hash(Cmd("echo", Q("x"))) == hash(Cmd("echo x"))
    assert Cmd("echo", Q("a b")) != Cmd("echo a b") and Cmd("echo x") != "echo x"
    assert repr(Cmd("echo", Q("a b"))) == "Cmd(\"echo 'a b'\")"


def test_a_word_glues_its_parts_into_one_shell_word():
    value = "a b $(id) 'q'"
    assert str(Word("KEY=", Q("a b"))) == "KEY='a b'"
    r = bash(Cmd(Word("KEY=", Q(value)), "bash", "-c", Q('printf "<%s>\\n" "$KEY"')))
    assert r.stdout == f"<{value}>\n"
    assert bash(Cmd(EACH, Word(Q("x y"), "/", Q("z")))).stdout == "<x y/z>\n"


def test_seq_runs_each_whatever_the_one_before_exited_with():
    assert str(seq("a", Cmd(), "b")) == "a ; b"
    r = bash(seq("false", "echo still"))
    assert r.stdout == "still\n" and r.returncode == 0


def test_pipe_feeds_each_into_the_next_and_under_shell_a_failure_anywhere_fails_it():
    assert str(pipe("a", "", Cmd("b"))) == "a | b"
    assert bash(pipe("printf 'a\\nb\\nc\\n'", "wc -l")).stdout.strip() == "3"
    failing = pipe("false", "cat")
    assert bash(failing).returncode == 0  # a plain shell keeps the last one's status ...
    assert bash(shell(failing)).returncode == 1  # ... shell() runs it under pipefail


def test_shell_is_one_argument_that_carries_a_hostile_value_intact(tmp_path):
    mark = tmp_path / "ran"
    value = f"it's $(touch {mark}) `touch {mark}`\nnext"
    inner = Cmd(EACH, Q(value))
    wrapped = shell(inner)
    assert str(wrapped).startswith("bash -o pipefail -c '")
    # what sudo gets: bash's options, then the whole command as one argument
    assert bash(Cmd(EACH, wrapped)).stdout == f"<bash>\n<-o>\n<pipefail>\n<-c>\n<{inner}>\n"
    r = bash(wrapped)
    assert r.stdout == f"<{value}>\n" and not mark.exists()


def test_group_makes_one_unit_for_redirections_and_operators():
    assert str(group(seq("a", "b"))) == "{ a ; b ; }"
    assert bash(Cmd(group(seq("echo a", "echo b")), "|", "wc -l")).stdout.strip() == "2"
    assert bash(Cmd("false", "||", group(seq("echo a", "echo b")))).stdout == "a\nb\n"
