"""docs/architecture.md shows the code as it is: every module it names exists, and every module is named there
(issue 26)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def named_modules() -> set[str]:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    table = doc[doc.index("## Modules"):doc.index("## One backup")]
    named = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            named |= set(re.findall(r"`(\w+\.py|\w+/)`", line.split("|")[1]))
    return named


def test_every_module_is_in_the_architecture_and_every_module_it_names_exists():
    package = ROOT / "maasops"
    modules = {p.name for p in package.glob("*.py") if p.name != "__init__.py"}
    modules |= {p.name + "/" for p in package.iterdir() if (p / "__init__.py").exists()}
    named = named_modules()
    assert sorted(modules - named) == [], "modules docs/architecture.md does not name"
    assert sorted(named - modules) == [], "modules docs/architecture.md names that do not exist"
