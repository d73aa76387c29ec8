"""CLI: one subcommand per registered analysis, generated from its ``Params``.

Flags are the field names in kebab case (``eps_m`` -> ``--eps-m``), help is the field's
description, defaults are the model's (an option left out is simply not passed), and
``--json`` prints the same body as ``POST /analyses/<name>``. Text output ends with the
inputs used (``inputs: mexico_firms@2, mexico_states@1``). Building the parser imports
only pydantic: ``run`` imports the science stack when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from geocluster.analyses import spec as registry
from geocluster.analyses.spec import AnalysisSpec, Cli
from geocluster.cli._common import (
    add_engine_args,
    add_workspace_arg,
    one_shot_memory_pool,
    open_ws,
    print_json,
    progress_bar,
)
from geocluster.errors import InvalidInput

#: Flags every analysis subcommand has besides its parameters.
#: Flags of every analysis subcommand that are not analysis parameters.
COMMON_FLAGS = ("workspace", "store", "engine", "scheduler", "json")


def register(sub: argparse._SubParsersAction) -> None:
    """Add one subcommand per registered analysis."""
    for spec in registry.specs():
        add_spec(sub, spec)


def flag(name: str) -> str:
    """The CLI flag of a field: ``eps_m`` -> ``--eps-m``."""
    return "--" + name.replace("_", "-")


def _cli(field: Any) -> Cli:
    return next((m for m in field.metadata if isinstance(m, Cli)), Cli())


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(type without None, whether None is allowed)."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        optional = len(args) < len(get_args(tp))
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), optional  # noqa: UP007
    return tp, False


def field_form(field: Any) -> str:
    """How a field is written on the command line: bool, choice, list, json or text."""
    if _cli(field).parse is not None:
        return "text"
    tp, _ = _unwrap(field.annotation)
    origin = get_origin(tp)
    if tp is bool:
        return "bool"
    if origin is Literal:
        return "choice"
    if origin is dict:
        return "json"
    if origin is list:
        inner, _ = _unwrap(get_args(tp)[0])
        return "json" if get_origin(inner) in (list, dict) else "list"
    return "text"


def _help(field: Any) -> str:
    text = field.description or ""
    if not field.is_required() and field.default is not None:
        default = field.default
        if isinstance(default, list):
            default = ",".join(map(str, default))
        text += f" (default: {default})"
    return text.strip() or None


def add_spec(sub: argparse._SubParsersAction, spec: AnalysisSpec) -> argparse.ArgumentParser:
    """Add the subcommand of ``spec`` (and its aliases) to ``sub``."""
    p = sub.add_parser(
        spec.name, aliases=list(spec.cli_aliases), help=spec.summary, description=spec.description
    )
    for name, field in spec.params.model_fields.items():
        cli = _cli(field)
        form = field_form(field)
        kwargs: dict[str, Any] = {"help": _help(field), "default": argparse.SUPPRESS}
        if form == "choice":
            kwargs["choices"] = list(get_args(_unwrap(field.annotation)[0]))
        if cli.positional:
            if form == "list":
                kwargs["nargs"] = "+" if field.is_required() else "*"
            elif not field.is_required():
                kwargs.update(nargs="?", default=None)  # argparse checks a default's choice
            p.add_argument(name, metavar=name.upper(), **kwargs)
            continue
        flags = [flag(name), *cli.aliases]
        if form == "bool":
            p.add_argument(*flags, dest=name, action="store_true", **kwargs)
            continue
        if form == "list":
            kwargs.update(nargs="+", action="extend", metavar="VALUE")
        else:
            kwargs["metavar"] = "JSON" if form == "json" else None
        if field.is_required():
            kwargs["required"] = True
        p.add_argument(*flags, dest=name, **{k: v for k, v in kwargs.items() if v is not None})
    add_workspace_arg(p)
    add_engine_args(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    for fmt in spec.formats:
        p.add_argument(f"--{fmt}", metavar="FILE", help=f"also write the {fmt} output to FILE")
    for option, choices in spec.format_options.items():
        p.add_argument(flag(option), choices=list(choices), help=f"{option} for the file output")
    p.set_defaults(handler=lambda args, spec=spec: run_command(spec, args))
    return p


def command_values(spec: AnalysisSpec, args: argparse.Namespace) -> dict[str, Any]:
    """The parameters given on the command line, in the form the ``Params`` model takes."""
    values: dict[str, Any] = {}
    for name, field in spec.params.model_fields.items():
        if not hasattr(args, name):
            continue
        raw = getattr(args, name)
        cli = _cli(field)
        form = field_form(field)
        if raw is None:
            continue
        if cli.parse is not None:
            values[name] = cli.parse(raw)
        elif form == "json":
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidInput(
                    f"expected {flag(name)} as JSON, got {raw!r} ({exc.msg})"
                ) from None
        elif form == "list" and not cli.positional:
            values[name] = [v.strip() for item in raw for v in str(item).split(",") if v.strip()]
        else:
            values[name] = raw
    return values


class _LazyWorkspace:
    """The workspace, opened only if the analysis reads it (inline inequality does not)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._ws = None

    def __getattr__(self, name: str) -> Any:
        if self._ws is None:
            self._ws = open_ws(self._args)
        return getattr(self._ws, name)


def run_command(spec: AnalysisSpec, args: argparse.Namespace) -> int:
    """Validate, run, pass the disclosure seam (the CLI user is the workspace's editor), print."""
    from geocluster.disclosure import PERMISSIVE, apply

    params = spec.parse(command_values(spec, args))
    one_shot_memory_pool()
    with progress_bar(not args.json) as update:
        result = spec.run(_LazyWorkspace(args), params, update)
    body = apply(result, None, PERMISSIVE).to_body()
    for fmt, render in spec.formats.items():
        path = getattr(args, fmt, None)
        if path:
            options = {o: getattr(args, o) for o in spec.format_options if getattr(args, o, None)}
            content, _ = render(body, options)
            Path(path).write_bytes(content)
    if args.json:
        print_json(body)
        return 0
    text = spec.text(body) if spec.text is not None else default_text(body)
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.write(f"inputs: {', '.join(body.get('inputs') or []) or 'none'}\n")
    for fmt in spec.formats:
        if getattr(args, fmt, None):
            sys.stdout.write(f"{fmt} written to {getattr(args, fmt)}\n")
    return 0


def default_text(body: dict[str, Any]) -> str:
    """Scalars of a body, one per line (for specs without their own text output)."""
    lines = []
    for key, value in body.items():
        if key == "inputs" or isinstance(value, dict | list):
            continue
        lines.append(f"{key}: {value}")
    return "\n".join(lines)
