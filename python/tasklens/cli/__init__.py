"""The ``tasklens`` command.

Each module in this package that defines ``register(subparsers)`` adds one subcommand; the
subcommand's handler is stored as ``func`` in its parser defaults and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    from tasklens import __version__

    parser = argparse.ArgumentParser(
        prog="tasklens",
        description="Measure and map relationships between machine-learning tasks and datasets.",
    )
    parser.add_argument("--version", action="version", version=f"tasklens {__version__}")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="threads for the CPU kernels (default: TASKLENS_NUM_THREADS or all cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.threads is not None:
        from tasklens import set_num_threads

        set_num_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        print(f"tasklens {args.command}: error: {exc}", file=sys.stderr)
        return 1
