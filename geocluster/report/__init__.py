"""Region reports: one region's profile, peers, clusters, inequality and sources.

:func:`geocluster.report.data.collect` gathers the disclosed content;
:func:`render_html` turns it into a self-contained HTML page (Jinja2, charts embedded as
PNG data URIs, one ``h1``, ordered headings, alt text on every image) and
:func:`render_pdf` prints that page to PDF with WeasyPrint (offline: no remote
resources are fetched). ``GET /regions/{id}/report`` and ``geocluster report`` call
:func:`build_report`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from typing import Any

__all__ = ["build_report", "render_html", "render_pdf"]

FORMATS = ("html", "pdf")


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "suppressed" if value is not None else "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return str(value)
    return f"{value:,.{digits}f}"


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{100 * float(value):.1f} %"


def _datauri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(content: dict[str, Any], *, lang: str = "en") -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    content : dict
        What :func:`geocluster.report.data.collect` returns.
    lang : str
        Language of the page (its ``lang`` attribute).
    """
    import jinja2

    from geocluster import __version__

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("geocluster.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(num=_num, pct=_pct, datauri=_datauri)
    template = env.get_template("report.html.j2")
    generated = content.get("generated") or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return template.render(
        r=content, p=content["profile"], lang=lang, version=__version__, generated=generated
    )


def render_pdf(html: str) -> bytes:
    """``html`` printed to an A4 PDF by WeasyPrint, without fetching any URL."""
    import logging

    import weasyprint

    # every image is a data: URI; any other scheme would be a fetch (never offline-safe)
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    return weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()


def build_report(ws, region_id: str, *, f: str = "html", **kwargs: Any) -> bytes:
    """The report of ``region_id`` as HTML (UTF-8 bytes) or PDF bytes.

    ``kwargs`` go to :func:`geocluster.report.data.collect` (inputs, principal, policy).
    """
    from geocluster.errors import InvalidInput
    from geocluster.report.data import collect

    if f not in FORMATS:
        raise InvalidInput(f"expected a report format in {FORMATS}, got {f!r}")
    html = render_html(collect(ws, region_id, **kwargs))
    return render_pdf(html) if f == "pdf" else html.encode("utf-8")
