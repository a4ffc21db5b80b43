"""Argument parsing shared by every subcommand: the help format, checked number types, the progress switch."""

from __future__ import annotations

import argparse
import sys

from tasklens._validation import check_int, check_scalar


class UsageError(ValueError):
    """A bad combination of options, found after parsing: reported like an argparse error (exit code 2)."""


class HelpFormatter(argparse.HelpFormatter):
    """Wraps description paragraphs, keeps indented blocks (lists, examples) as written, and ends every
    option's help with its default."""

    def _fill_text(self, text, width, indent):
        out = []
        for para in text.split("\n\n"):
            lines = para.splitlines()
            if any(line[:1].isspace() for line in lines[1:]) or para.lstrip() != para:
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(super()._fill_text(para, width, indent))
        return "\n\n".join(out)

    def _get_help_string(self, action):
        text = action.help or ""
        if not action.option_strings or action.default is argparse.SUPPRESS or "default" in text.lower():
            return text
        if action.default is None:
            return text
        if action.default is False and action.nargs == 0:
            return text + " (default: off)"
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` using :class:`HelpFormatter`; its subcommand parsers are of this class too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _reason(exc: Exception) -> str:
    return str(exc).split(": ", 1)[-1]


def int_type(min: int | None = None, max: int | None = None):
    """An argparse ``type`` for whole numbers in ``[min, max]`` (2.5 is an error, never truncated).

    >>> int_type(min=1)("3")
    3
    >>> int_type(min=1)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected an int >= 1, got 0
    """

    def parse(text: str) -> int:
        try:
            return check_int(_number(text), "value", min=min, max=max)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(_reason(exc)) from None

    parse.__name__ = "int"
    return parse


def float_type(min: float | None = None, max: float | None = None, *, min_inclusive: bool = True,
               max_inclusive: bool = True):
    """An argparse ``type`` for finite real numbers within the bounds."""

    def parse(text: str) -> float:
        try:
            return check_scalar(_number(text), "value", min=min, max=max, min_inclusive=min_inclusive,
                                max_inclusive=max_inclusive)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(_reason(exc)) from None

    parse.__name__ = "float"
    return parse


def add_progress(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress``; unset means: progress bars only when stderr is a terminal."""
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show progress bars (default: only when stderr is a terminal, never into a log "
                             "file or pipe)")


def show_progress(args) -> bool:
    """The resolved ``--progress`` switch."""
    if args.progress is not None:
        return bool(args.progress)
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())
