"""Host text reaches the operator with its escape codes shown, never run (issue 24)."""

from __future__ import annotations

import json
from pathlib import Path

from maasops import hosttext, output
from maasops.errors import RemoteError

HOSTILE = "ok\x1b]0;pwned\x07\x1b[2J\r\x9b31mred\x00"
SHOWN = "ok\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x9b31mred\\x00"


def test_control_characters_but_newline_and_tab_are_shown_as_escapes():
    assert hosttext.clean(HOSTILE) == SHOWN
    assert hosttext.clean("a\tb\nc é") == "a\tb\nc é"
    assert hosttext.clean_data({"k\x1b": [HOSTILE, 1, None]}) == {"k\\x1b": [SHOWN, 1, None]}


def test_host_text_is_escaped_in_errors_tables_lines_and_json(capsys):
    err = RemoteError("region1", "probe", f"sudo said: {HOSTILE}", "hint")
    assert SHOWN in str(err) and "\x1b" not in str(err)
    assert "\x1b" not in output.table([{"host": "r", "value": HOSTILE}]) and SHOWN in output.table([{"v": HOSTILE}])
    out = output.Output(json_mode=True)
    out.say(HOSTILE)
    out.emit({"error": HOSTILE, "path": Path("/x")})
    got = capsys.readouterr()
    assert got.err.strip() == SHOWN
    assert json.loads(got.out) == {"error": SHOWN, "path": "/x"}
    output.Output().say(HOSTILE)
    assert capsys.readouterr().out.strip() == SHOWN
