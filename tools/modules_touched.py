"""Which maasops modules' code runs during one ``maasops`` command (issue 26's measure of a data flow).

``python tools/modules_touched.py restore SET --lab-dir .lab`` runs the command in this process with a profile
hook on every thread and prints, after it ends, each ``maasops`` module one of whose functions was called
(module-level code run by an import is not counted), the lab's modules apart.
"""

from __future__ import annotations

import sys
import threading

from maasops import program

seen: set[str] = set()


def _hook(frame, event, arg):  # noqa: ANN001, ANN202 - sys.setprofile's signature
    if event == "call" and frame.f_code.co_name != "<module>":
        name = frame.f_globals.get("__name__", "")
        if name == "maasops" or name.startswith("maasops."):
            seen.add(name)


def main() -> None:
    """Run ``maasops ARGS`` under the hook, then print the modules it called into."""
    sys.argv = ["maasops", *sys.argv[1:]]
    threading.setprofile(_hook)
    sys.setprofile(_hook)
    code = 0
    try:
        program.program.run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    product = sorted(m for m in seen if not m.startswith("maasops.lab"))
    lab = sorted(m for m in seen if m.startswith("maasops.lab"))
    print(f"\nexit {code}; {len(product)} maasops modules ran (lab apart: {len(lab)})", file=sys.stderr)
    for m in product:
        print(m)
    for m in lab:
        print(f"{m} (lab)")


if __name__ == "__main__":
    main()
