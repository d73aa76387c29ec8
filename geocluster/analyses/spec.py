"""One declaration per analysis, from which the HTTP routes and CLI subcommands are built.

An :class:`AnalysisSpec` names an analysis, documents it, declares its parameters once
as a frozen pydantic model (every constraint and default, units in field names) and
points to ``run(ctx, params, progress) -> Result``. ``api/routers/analyses.py``
generates ``POST /analyses/<name>`` and :mod:`geocluster.cli` generates
``geocluster <name>`` from :data:`REGISTRY`; nothing else dispatches analyses.

This module and every spec module import only pydantic: the CLI builds its parser from
them without importing the science stack, and ``run`` imports what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from geocluster.errors import InvalidInput, NotFound

Progress = Callable[[float, str], None]


class Params(BaseModel):
    """Base of every analysis' parameters: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class Cli:
    """CLI details of one field, as ``Annotated`` metadata (flag names stay the field's).

    Parameters
    ----------
    aliases : tuple of str
        Extra flags kept for existing commands (``--sector`` for ``sectors``).
    positional : bool
        A positional argument instead of a flag (``geocluster assets gaps``).
    parse : callable, optional
        ``parse(text) -> value`` for a compact text form (``0-1,1-2`` for pairs).
    """

    aliases: tuple[str, ...] = ()
    positional: bool = False
    parse: Callable[[str], Any] | None = None


@dataclass(frozen=True)
class AnalysisSpec:
    """The single definition of an analysis.

    Parameters
    ----------
    name : str
        Route ``POST /analyses/<name>`` and subcommand ``geocluster <name>``.
    summary : str
        One line for the route list and ``geocluster --help``.
    description : str
        Longer text for the OpenAPI description and the subcommand's ``--help``.
    params : type of Params
        The parameters.
    run : callable
        ``run(ctx, params, progress) -> Result``; ``ctx`` is the Workspace.
    examples : tuple of dict
        Request bodies shown in the OpenAPI docs (each must validate).
    text : callable, optional
        ``text(body) -> str``: the CLI's human-readable output (default: a summary).
    cli_aliases : tuple of str
        Other subcommand names (``rank`` for ``ranking``).
    formats : mapping of str to callable
        Extra outputs: ``formats[f](body, options) -> (bytes, media_type)``, offered as
        ``?format=f`` over HTTP and ``--f FILE`` on the CLI.
    format_options : mapping of str to tuple of str
        Options of those outputs and their choices (``chart``: lorenz, indices ...), a
        query parameter over HTTP and a flag on the CLI.
    """

    name: str
    summary: str
    description: str
    params: type[Params]
    run: Callable[[Any, Any, Progress], Any]
    examples: tuple[Mapping[str, Any], ...] = ()
    text: Callable[[Mapping[str, Any]], str] | None = None
    cli_aliases: tuple[str, ...] = ()
    formats: Mapping[str, Callable[[Mapping[str, Any], Mapping[str, str]], tuple[bytes, str]]] = (
        field(default_factory=dict)
    )
    format_options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def parse(self, values: Mapping[str, Any]) -> Params:
        """Validate ``values`` into :attr:`params` (errors as one-line :class:`InvalidInput`)."""
        try:
            return self.params.model_validate(dict(values))
        except ValidationError as exc:
            raise InvalidInput(validation_message(exc)) from None

    def __call__(self, ctx: Any, progress: Progress | None = None, **values: Any) -> Any:
        """Validate ``values`` and run: ``spec(ws, firms="firms", eps_m=2000)``."""
        return self.run(ctx, self.parse(values), progress or _silent)


def _silent(fraction: float, message: str) -> None:
    return None


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line: ``field: message (got value)``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        text = f"{loc}: {err.get('msg', 'invalid value')}" if loc else err.get("msg", "invalid")
        got = err.get("input")
        if got is not None and not isinstance(got, dict | list) and len(str(got)) < 80:
            text += f" (got {got!r})"
        parts.append(text)
    return "; ".join(parts) or "invalid parameters"


#: Every registered analysis by name, in registration order.
REGISTRY: dict[str, AnalysisSpec] = {}


def register(spec: AnalysisSpec) -> AnalysisSpec:
    """Add ``spec`` to :data:`REGISTRY` (a name may be registered once) and return it."""
    if spec.name in REGISTRY and REGISTRY[spec.name] is not spec:
        raise InvalidInput(f"an analysis named {spec.name!r} is already registered")
    for example in spec.examples:
        spec.parse(example)  # an example that does not validate is a bug in the spec
    REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove an analysis (tests register toy analyses and remove them)."""
    REGISTRY.pop(name, None)


def get(name: str) -> AnalysisSpec:
    """The analysis ``name`` (built-in analyses are loaded on first use)."""
    load_builtin()
    try:
        return REGISTRY[name]
    except KeyError:
        raise NotFound(f"no analysis {name!r}; analyses: {', '.join(REGISTRY)}") from None


def specs() -> list[AnalysisSpec]:
    """Every registered analysis (built-in ones loaded)."""
    load_builtin()
    return list(REGISTRY.values())


_LOADED = False


def load_builtin() -> None:
    """Import the built-in spec modules; each registers its analyses."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib
    import pkgutil

    from geocluster.analyses import specs as package

    # discovery, not dispatch: a new spec module registers itself by being in the
    # package, so adding an analysis touches no list
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        if not module.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module}")
