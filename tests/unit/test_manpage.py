"""maasops.1 is made from the option table."""

from __future__ import annotations

from maasops import manpage
from maasops.namespace import ns
from tests.labtools import ROOT


def test_the_man_page_in_the_package_is_made_from_the_option_table():
    page = (ROOT / "maasops" / "maasops.1").read_text()
    assert page == manpage.render(), "run: python -m maasops.manpage > maasops/maasops.1"
    for spec in ns.task_names:
        if "." not in spec and spec != "drill":
            for name in ns[spec].spec.options:
                assert name.replace("_", "\\-") in page, name
