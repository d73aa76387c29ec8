"""Named cluster-threshold presets for economies with thin, partly informal registers.

Statistical cluster mapping (the European or US Cluster Observatory) looks for
employment specialisation in complete registers. Where registers are thin and much of the
economy is informal, programmes instead define a cluster by a *count of enterprises* in a
contiguous area. Each preset here maps such a definition onto this package's density
clustering: DBSCAN's ``eps_m`` and ``min_samples`` find the concentrations, and
``min_firms`` keeps those with the enterprise count the definition asks for. The measure
is always the number of firms (``measure="firms"``): employment is the first thing thin
registers lack.

Every preset says which numbers come from its source and which are this package's
choice (``chosen_here``): the definitions give enterprise counts and speak of "a few
villages, a town or a city", never of a radius in metres, so ``eps_m`` and
``min_samples`` are always ours. ``PRESETS.md`` beside this file documents them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from geocluster.errors import InvalidInput

__all__ = ["PRESETS", "ClusterPreset", "get_preset", "keep_clusters", "validate_preset"]

_FIELDS_CHOSEN = frozenset({"eps_m", "min_samples", "min_firms", "measure"})


@dataclass(frozen=True)
class ClusterPreset:
    """A named cluster definition.

    Attributes
    ----------
    name : str
    min_samples : int
        DBSCAN core threshold (firms within ``eps_m``, the firm itself included).
    eps_m : float
        DBSCAN radius in metres.
    min_firms : int
        Smallest number of firms for a detected concentration to count as a cluster.
    measure : str
        ``"firms"``: clusters are sized by their number of enterprises.
    definition : str
        The source's definition, paraphrased.
    source : str
        Citation of the definition.
    source_url : str
        Where the definition can be read.
    chosen_here : tuple of str
        Parameters that are this package's choice, not the source's.
    notes : str
        Caveats (how sure the number is, what the preset is for).
    """

    name: str
    min_samples: int
    eps_m: float
    min_firms: int
    measure: str
    definition: str
    source: str
    source_url: str
    chosen_here: tuple[str, ...]
    notes: str = ""

    def clustering_params(self) -> dict:
        """Keyword arguments for ``geocluster.clustering.cluster_firms`` (DBSCAN)."""
        return {"method": "dbscan", "eps_m": self.eps_m, "min_samples": self.min_samples}

    def to_dict(self) -> dict:
        """JSON-ready form."""
        d = asdict(self)
        d["chosen_here"] = list(self.chosen_here)
        return d


def validate_preset(p: ClusterPreset) -> ClusterPreset:
    """Check a preset's values and its citation; returns it, raises InvalidInput.

    Checks: positive integer ``min_samples`` and ``min_firms`` with ``min_samples <=
    min_firms`` (a cluster has at least one core firm and its neighbours), a positive
    finite ``eps_m``, ``measure == "firms"``, a non-empty definition, source and an
    ``http(s)`` source URL, and ``chosen_here`` naming only preset parameters.
    """
    for field in ("min_samples", "min_firms"):
        v = getattr(p, field)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidInput(f"preset {p.name!r}: expected {field} >= 1 (integer), got {v!r}")
    if p.min_samples > p.min_firms:
        raise InvalidInput(
            f"preset {p.name!r}: expected min_samples <= min_firms, got "
            f"{p.min_samples} > {p.min_firms}"
        )
    if not isinstance(p.eps_m, int | float) or not math.isfinite(p.eps_m) or p.eps_m <= 0:
        raise InvalidInput(f"preset {p.name!r}: expected eps_m > 0 metres, got {p.eps_m!r}")
    if p.measure != "firms":
        raise InvalidInput(f"preset {p.name!r}: expected measure 'firms', got {p.measure!r}")
    for field in ("name", "definition", "source"):
        if not str(getattr(p, field)).strip():
            raise InvalidInput(f"preset {p.name!r}: expected a non-empty {field}")
    if not p.source_url.startswith(("https://", "http://")):
        raise InvalidInput(f"preset {p.name!r}: expected an http(s) source_url")
    unknown = set(p.chosen_here) - _FIELDS_CHOSEN
    if unknown:
        raise InvalidInput(f"preset {p.name!r}: chosen_here names unknown fields {sorted(unknown)}")
    return p


_FMC = (
    "Foundation for MSME Clusters (New Delhi; set up with UNIDO's Cluster Development "
    "Programme in India), Cluster Observatory of India, 'Definition of Clusters'"
)
_FMC_URL = "http://clusterobservatory.in/clustermap.php"

PRESETS: dict[str, ClusterPreset] = {
    p.name: validate_preset(p)
    for p in (
        ClusterPreset(
            name="india_industrial",
            min_samples=10,
            eps_m=2000.0,
            min_firms=100,
            measure="firms",
            definition=(
                "Industrial cluster: a concentration of enterprises producing the same or "
                "similar products in a contiguous area (a few villages, a town or a city and "
                "its surroundings in a district), with at least 100 enterprises and/or a "
                "turnover of at least Rs 100 million; units work from factory premises with "
                "hired workers."
            ),
            source=_FMC,
            source_url=_FMC_URL,
            chosen_here=("eps_m", "min_samples"),
            notes=(
                "The turnover alternative is not applied (registers rarely hold turnover). "
                "eps_m = 2 km reads 'a town and its surroundings'."
            ),
        ),
        ClusterPreset(
            name="india_micro_enterprise",
            min_samples=5,
            eps_m=1000.0,
            min_firms=50,
            measure="firms",
            definition=(
                "Micro-enterprise cluster: all or mostly household-based micro units with "
                "home-based workers (artisanal: handicrafts, handloom; other micro "
                "enterprises); handicraft and other micro-enterprise clusters have around "
                "50 units (handloom clusters about 500 looms)."
            ),
            source=_FMC,
            source_url=_FMC_URL,
            chosen_here=("eps_m", "min_samples"),
            notes=(
                "The source's 'around 50 units' is used as the floor. Handloom clusters are "
                "defined by looms, not enterprises, and have no preset. eps_m = 1 km reads "
                "'a few villages'."
            ),
        ),
        ClusterPreset(
            name="india_mse_cdp",
            min_samples=5,
            eps_m=1500.0,
            min_firms=20,
            measure="firms",
            definition=(
                "MSE-CDP (Ministry of MSME, Government of India): a group of enterprises in "
                "an identifiable and, as far as practicable, contiguous area or a value chain, "
                "producing the same, similar or complementary products or services, that can "
                "be linked by common physical infrastructure; eligibility summaries state a "
                "minimum of 20 member enterprises."
            ),
            source=(
                "Ministry of MSME, Micro & Small Enterprises - Cluster Development Programme "
                "(MSE-CDP) scheme guideline (definition); minimum of 20 enterprises as stated "
                "in secondary summaries of the eligibility criteria"
            ),
            source_url=(
                "https://www.msmedinewdelhi.gov.in/CLCS_TUS_Scheme/Cluster-Development-Programme/"
                "Scheme_Guideline.aspx"
            ),
            chosen_here=("eps_m", "min_samples"),
            notes=(
                "The 20-enterprise floor comes from secondary summaries, not from the text of "
                "the guideline read here; check the current guideline before citing it as "
                "official."
            ),
        ),
        ClusterPreset(
            name="unido_diagnostic",
            min_samples=5,
            eps_m=1000.0,
            min_firms=15,
            measure="firms",
            definition=(
                "UNIDO: a cluster is a sectoral and geographical concentration of enterprises "
                "and/or individual producers that produce a similar range of goods or services "
                "and face similar threats and opportunities, with a critical mass of "
                "enterprises in proximity; it includes their support institutions."
            ),
            source=(
                "UNIDO Cluster Development Programme, 'What are clusters' (The UNIDO Approach "
                "to cluster development); UNIDO (2010), Cluster development for pro-poor "
                "growth: the UNIDO approach"
            ),
            source_url="http://clustersfordevelopment.org/",
            chosen_here=("eps_m", "min_samples", "min_firms"),
            notes=(
                "UNIDO gives no numeric floor ('critical mass'). This preset is a deliberately "
                "low screening threshold for a first diagnostic where registers are thin: it "
                "lists candidate concentrations for field verification in the diagnostic "
                "study, not confirmed clusters."
            ),
        ),
    )
}


def get_preset(name: str) -> ClusterPreset:
    """The preset called ``name``; raises InvalidInput naming the known presets."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise InvalidInput(
            f"expected a cluster preset among {sorted(PRESETS)}, got {name!r}"
        ) from None


def keep_clusters(summary: pd.DataFrame, preset: ClusterPreset | str) -> pd.DataFrame:
    """Clusters of a summary with at least the preset's ``min_firms`` firms.

    Parameters
    ----------
    summary : DataFrame
        Cluster summaries with ``n_firms`` (``summarize_clusters``).
    preset : ClusterPreset or str

    Returns
    -------
    DataFrame
        The rows kept, in their order; ``attrs["preset"]`` is the preset's name and
        ``attrs["dropped"]`` the number of concentrations below ``min_firms``.
    """
    p = get_preset(preset) if isinstance(preset, str) else validate_preset(preset)
    if "n_firms" not in summary.columns:
        raise InvalidInput(f"expected an n_firms column, got {list(summary.columns)}")
    n = pd.to_numeric(summary["n_firms"], errors="coerce")
    kept = summary[n >= p.min_firms].copy()
    kept.attrs["preset"] = p.name
    kept.attrs["dropped"] = int(len(summary) - len(kept))
    return kept
