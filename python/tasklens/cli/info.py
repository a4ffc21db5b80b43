"""tasklens info: version, build and runtime facts."""

from __future__ import annotations

import json


def gpu_line(facts: dict) -> str:
    """One plain sentence on the GPU: usable devices, or why there are none (no GPU/driver, no CUDA build)."""
    n = int(facts.get("cuda_devices") or 0)
    note = facts.get("cuda_note")
    if not facts.get("cuda_compiled"):
        return "no (this build has no CUDA kernels; CPU only)"
    if n > 0:
        return f"yes, {n} CUDA device{'s' if n != 1 else ''} visible"
    return "no GPU/driver: CPU only" + (f" ({note})" if note else "")


def register(sub) -> None:
    p = sub.add_parser("info", help="show version, build, CUDA and thread facts",
                       description="Show the version, build type, compiler, whether CUDA kernels were compiled "
                                   "and for which architectures, visible GPUs (or why none is usable), and the "
                                   "thread count.")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from tasklens import info

    facts = dict(info())
    facts.setdefault("gpu", gpu_line(facts))
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    width = max(map(len, facts))
    print(f"{'gpu':<{width}}  {facts['gpu']}")
    for key, value in facts.items():
        if key == "gpu":
            continue
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        print(f"{key:<{width}}  {value if value is not None else '-'}")
    return 0
