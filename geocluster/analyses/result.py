"""What an analysis returns: typed layers with a disclosure kind, plus a JSON body.

A :class:`Result` keeps its tables as frames until the edge: the disclosure policy
(:func:`geocluster.disclosure.apply`) works on the frames by their declared kind, and
:meth:`Result.to_body` serialises once to the JSON response (CONTRACT.md shapes).
This module imports nothing heavy: frames are only touched inside the methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

#: Disclosure kinds a layer declares (ARCHITECTURE.md, "The edge: security and disclosure").
DISCLOSURE_KINDS = (
    "firm_points",  # one row per firm, with its location: microdata
    "cell_counts",  # counts of firms per cell (grid cell, asset buffer, ...)
    "region_table",  # region (x sector) table built from firm counts
    "cluster_summary",  # one row (and hull) per point cluster of firms
    "surface",  # a density surface of firms
    "public",  # nothing confidential (indicators, assets, boundaries, statistics)
)

#: How a layer is written into the body.
SHAPES = ("records", "features", "row")


@dataclass(frozen=True)
class Layer:
    """One table of a result, with the disclosure kind it declares.

    Parameters
    ----------
    kind : str
        One of :data:`DISCLOSURE_KINDS`.
    frame : DataFrame or GeoDataFrame
        The table (GeoDataFrames in any CRS; written in lon/lat).
    shape : {"records", "features", "row"}
        JSON form: a list of row dicts, a GeoJSON FeatureCollection, or one dict (the
        first row).
    count_col : str, optional
        Column with the number of firms behind each row (required for ``cell_counts``,
        ``region_table`` and ``cluster_summary``).
    top_k_col, total_col : str, optional
        Employment of the largest firms and the total, for the dominance rule.
    json_columns : tuple of str
        Columns holding JSON text to expand (features).
    render : callable, optional
        ``render(frame) -> JSON`` instead of ``shape``.
    """

    kind: str
    frame: Any
    shape: str = "records"
    count_col: str | None = None
    top_k_col: str | None = None
    total_col: str | None = None
    json_columns: tuple[str, ...] = ()
    render: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        from geocluster.errors import InvalidInput

        if self.kind not in DISCLOSURE_KINDS:
            raise InvalidInput(
                f"expected a disclosure kind in {DISCLOSURE_KINDS}, got {self.kind!r}"
            )
        if self.shape not in SHAPES:
            raise InvalidInput(f"expected a layer shape in {SHAPES}, got {self.shape!r}")
        if self.kind in ("cell_counts", "region_table", "cluster_summary") and not self.count_col:
            raise InvalidInput(f"a {self.kind} layer must name its count column")

    def with_frame(self, frame: Any) -> Layer:
        """A copy of the layer holding ``frame`` instead."""
        return replace(self, frame=frame)

    def to_json(self) -> Any:
        """The layer in its JSON form (JSON-safe values: see :func:`jsonable`)."""
        from geocluster.analyses._common import feature_collection, jsonable, records

        if self.render is not None:
            return jsonable(self.render(self.frame))
        if self.shape == "features":
            return feature_collection(self.frame, json_columns=self.json_columns)
        rows = records(self.frame)
        if self.shape == "row":
            return rows[0] if rows else None
        return rows


@dataclass(frozen=True)
class Result:
    """The outcome of one analysis call.

    Parameters
    ----------
    body : dict
        JSON-ready values of the response that are not layers (counts, parameters ...).
    layers : mapping of str to Layer
        Tables placed into the body at their key; a key ``"a/b"`` or ``"a/0/b"`` places
        the layer inside nested dicts and lists of ``body``; the key ``"*"`` merges a
        one-row layer's fields into the top level.
    inputs : tuple of str
        Exact versions of the datasets (``mexico_firms@2``) and the run ids used.
    run_id : str, optional
        The run saved in the workspace, if any.
    """

    body: Mapping[str, Any]
    layers: Mapping[str, Layer] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    run_id: str | None = None

    def with_layers(self, layers: Mapping[str, Layer]) -> Result:
        """A copy of the result with ``layers`` instead."""
        return replace(self, layers=dict(layers))

    def to_body(self) -> dict[str, Any]:
        """The JSON response: ``run_id`` first, the body, the layers, then ``inputs``.

        Every value is walked once: :func:`jsonable` copies the body's containers, and
        each layer's JSON is already JSON-safe (a national scan's 2,000 cluster
        outlines are hundreds of thousands of coordinates).
        """
        from geocluster.analyses._common import jsonable

        out: dict[str, Any] = {"run_id": self.run_id} if self.run_id is not None else {}
        out.update(jsonable(dict(self.body)))
        for key, layer in self.layers.items():
            if key == "*":  # a one-row layer whose fields are top-level fields
                out.update(layer.to_json() or {})
            else:
                _put(out, key.split("/"), layer.to_json())
        out["inputs"] = [str(v) for v in self.inputs]
        return out


def _put(target: Any, path: list[str], value: Any) -> None:
    for part in path[:-1]:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    last = path[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


def stored_kinds(**layers: str | tuple[str, str]) -> dict[str, Any]:
    """The disclosure kind of each stored run layer, for the run's summary.

    ``stored_kinds(labels="firm_points", clusters=("cluster_summary", "n_firms"))``
    -> ``{"disclosure": {"labels": {"kind": "firm_points", "count_col": None}, ...}}``.
    Items, tiles and downloads of a run's collections read the kind from here instead
    of guessing it from the columns.
    """
    out = {}
    for name, spec in layers.items():
        kind, count_col = (spec, None) if isinstance(spec, str) else spec
        if kind not in DISCLOSURE_KINDS:
            from geocluster.errors import InvalidInput

            raise InvalidInput(f"expected a disclosure kind in {DISCLOSURE_KINDS}, got {kind!r}")
        out[name] = {"kind": kind, "count_col": count_col}
    return {"disclosure": out}
