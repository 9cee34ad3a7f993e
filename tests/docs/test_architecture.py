"""docs/architecture.md shows the code as it is: every module it names exists, and every module is named there
(issue 26)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def test_the_tests_are_laid_out_like_the_package():
    """tests/unit mirrors maasops/: tests/unit/<path>/test_<module>[_<aspect>].py tests maasops/<path>/<module>.py,
    so a module's tests are found by its path; the lab's tests are under tests/lab."""
    unit = ROOT / "tests" / "unit"
    modules = {p.relative_to(ROOT / "maasops").with_suffix("") for p in (ROOT / "maasops").rglob("*.py")}
    strays = []
    for test in unit.rglob("test_*.py"):
        where = test.parent.relative_to(unit)
        stem = test.stem.removeprefix("test_")
        if not any(where / name in modules for name in _prefixes(stem)):
            strays.append(str(test.relative_to(ROOT)))
    assert strays == [], "unit test files that name no module of maasops/ by their path"


def _prefixes(stem: str) -> list[str]:
    parts = stem.split("_")
    return ["_".join(parts[:i]) for i in range(len(parts), 0, -1)]


def test_every_test_the_docs_name_exists():
    """A test a document cites (``tests/<path>.py``, ``tests/<path>.py::test_name``, or a name's beginning
    followed by an ellipsis) is there to be read."""
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for path, name, cut in re.findall(r"(tests/[\w/]+\.py)(?:::(test_\w+)(…)?)?", doc.read_text()):
            source = ROOT / path
            end = "" if cut else r"\b"
            if not source.is_file() or (name and not re.search(rf"^def {name}{end}", source.read_text(), re.M)):
                missing.append(f"{doc.name}: {path}{'::' + name if name else ''}")
    assert missing == []


def test_no_test_file_imports_another():
    """What several test files build is in tests/builders.py or tests/labtools.py, not borrowed from a test file."""
    borrowed = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in (ROOT / "tests").rglob("test_*.py")
                for line in p.read_text().splitlines() if re.match(r"\s*from tests\.(\w+\.)*test_\w+ import", line)]
    assert borrowed == []
