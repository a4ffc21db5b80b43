"""``tasklens info``: version, build and runtime facts."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("info", help="show version, build, CUDA and thread facts",
                       description="Show the version, build type, compiler, whether CUDA kernels were "
                                   "compiled and for which architectures, visible GPUs, and the thread count.")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from tasklens import info

    facts = info()
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    width = max(map(len, facts))
    for key, value in facts.items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        print(f"{key:<{width}}  {value if value is not None else '-'}")
    return 0
