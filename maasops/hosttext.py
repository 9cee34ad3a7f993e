"""Text from a host (its stderr, its files' values, its listings) or a set, made safe to show.

A controller may be hostile: its output can carry terminal escape sequences that
rewrite what the operator sees (hide a line, fake a prompt, retitle the window).
Every piece of such text passes :func:`clean` where it leaves maasops: a host's
error (:class:`maasops.errors.RemoteError`), a table (:func:`maasops.output.table`),
a line for a person and the JSON document (:class:`maasops.output.Output`).
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and the C1 controls (U+0080-U+009F: CSI is U+009B).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` with every control character but newline and tab written as a visible escape (ESC: ``\\x1b``)."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def clean_data(data: object) -> object:
    """``data`` (JSON-like: dicts, lists, strings) with :func:`clean` applied to every string in it, keys too."""
    if isinstance(data, str):
        return clean(data)
    if isinstance(data, dict):
        return {clean_data(k): clean_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [clean_data(v) for v in data]
    return data
