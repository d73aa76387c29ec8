"""``GET /regions/{id}/report`` and ``geocluster report``: the region report of MX-OAX.

The workspace is the demo's Mexican part, ingested from the bundled files as ``geocluster
demo`` does (real state boundaries and per-capita GDP, the synthetic firm register, the
heritage assets), with the demo's agro-food clusters run and its ranking.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geocluster.cli import main
from geocluster.demo import DEMO_DATASETS, default_data_dir
from geocluster.disclosure import DisclosurePolicy, Principal
from geocluster.report import build_report

MEXICO = ("mexico_states", "mexico_pcgdp", "mexico_firms", "mexico_assets")


@pytest.fixture(scope="module")
def mexico(tmp_path_factory):
    from geocluster.analyses.clusters import run_clusters
    from geocluster.analyses.specialization import run_ranking
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("report") / "ws")
    data = default_data_dir()
    for spec in DEMO_DATASETS:
        if spec.name in MEXICO:
            ws.ingest(spec.kind, data / spec.path, name=spec.name, options=spec.options)
    # the demo's agro-food run (geocluster.demo.DEMO_RUNS) and a second run, so that the
    # clusters run has to be named
    agro = run_clusters(ws, firms="mexico_firms", method="dbscan", eps_m=2000.0,
                        min_samples=10, sector_group="agro_food")["run_id"]  # fmt: skip
    run_clusters(ws, firms="mexico_firms", method="dbscan", eps_m=1500.0, min_samples=15,
                 sectors=["15"])  # fmt: skip
    ranking = run_ranking(ws, clusters_run=agro, boundaries="mexico_states",
                          assets="mexico_assets", radius_m=10000.0)["run_id"]  # fmt: skip
    return {"ws": ws, "clusters_run": agro, "ranking_run": ranking}


@pytest.fixture(scope="module")
def app(mexico):
    return create_app(Settings(workspace=mexico["ws"].path))


def _get(app, path, **params):
    with TestClient(app, raise_server_exceptions=False) as c:
        return c.get(path, params=params)


def _pdftotext(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=60
    )
    return out.stdout.decode("utf-8")


def test_pdf_report_names_region_clusters_and_sources(mexico, app, tmp_path):
    r = _get(app, "/regions/MX-OAX/report", boundaries="mexico_states",
             clusters_run=mexico["clusters_run"], f="pdf")  # fmt: skip
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    text = _pdftotext(r.content, tmp_path)
    flat = " ".join(text.split())
    assert "Oaxaca: region report" in flat
    # its clusters: the named run, its ranking and the cluster row with its sector title
    assert mexico["clusters_run"] in flat and mexico["ranking_run"] in flat
    assert re.search(r"Cluster 0 .*Manufacture of beverages", flat)
    assert "Ranking components" in flat and "Specialisation (LQ)" in flat
    # human titles and units, never the code names
    assert "GDP per capita (constant pesos per person)" in flat
    assert "Theil T index" in flat and "theil_t" not in flat
    # sources and the exact inputs
    assert "Sources and exact inputs" in flat
    for name in MEXICO:  # the exact versions used
        assert mexico["ws"].dataset(name).ref in flat
    assert "mexico_pcgdp.csv" in flat  # the source file by name, never its server path
    assert str(mexico["ws"].path) not in flat
    # peers (Chiapas and Guerrero are Oaxaca's nearest on per-capita GDP 1940-2000)
    assert "Chiapas" in flat and "Guerrero" in flat
    # the first page as a PNG (the artefact of docs/report-oaxaca.png)
    png = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile",
                    str(tmp_path / "report.pdf"), str(png)], check=True, timeout=60)  # fmt: skip
    assert (tmp_path / "page.png").read_bytes().startswith(b"\x89PNG")


class _Outline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[int] = []
        self.imgs: list[dict] = []
        self.lang: str | None = None
        self.title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "title":
            self.title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        elif tag == "img":
            self.imgs.append(a)


def test_html_report_passes_a_basic_accessibility_check(mexico, app):
    r = _get(app, "/regions/MX-OAX/report", boundaries="mexico_states",
             clusters_run=mexico["clusters_run"], f="html")  # fmt: skip
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = _Outline()
    page.feed(r.text)
    assert page.lang == "en" and page.title
    assert page.headings.count(1) == 1 and page.headings[0] == 1
    # ordered: no level skipped on the way down (h1 -> h2 -> h3)
    for before, after in zip(page.headings, page.headings[1:], strict=False):
        assert after <= before + 1, page.headings
    # the locator map, one chart per indicator, the inequality and components charts
    assert len(page.imgs) >= 4
    for img in page.imgs:
        assert img.get("alt", "").strip(), img.get("src", "")[:40]
        assert img["src"].startswith("data:image/png;base64,")  # self-contained, offline
    assert "Oaxaca highlighted" in r.text


def _viewer_client(mexico, tmp_path, policy):
    """A client whose requests are a viewer's, through the authentication layer if any.

    With the security layer (``geocluster.auth``) a viewer key on a copy of the
    workspace (a key turns the open single-user mode off); before it, the principal is
    set on the request as that layer leaves it.
    """
    import shutil

    import geocluster.disclosure

    # next to this tree's geocluster (an editable install elsewhere may also provide it)
    if not Path(geocluster.disclosure.__file__).with_name("auth.py").is_file():
        app = create_app(Settings(workspace=mexico["ws"].path))

        @app.middleware("http")
        async def as_viewer(request, call_next):
            request.state.principal = Principal("reader", "viewer")
            return await call_next(request)

        headers = {}
    else:
        from geocluster.auth import create_key
        from geocluster.workspace import Workspace

        copy = tmp_path / "ws"
        shutil.copytree(mexico["ws"].path, copy)
        catalog = Workspace(copy).catalog
        _, key = create_key(catalog, "viewer", "reader")
        _, admin = create_key(catalog, "admin", "admin")
        app = create_app(Settings(workspace=copy))
        headers = {"X-API-Key": key}
        with TestClient(app) as c:  # firm registers are private by default: publish it
            r = c.patch("/datasets/mexico_firms", json={"visibility": "public"},
                        headers={"X-API-Key": admin})  # fmt: skip
            assert r.status_code == 200, r.text
    app.state.policy = policy
    return TestClient(app, raise_server_exceptions=False, headers=headers)


def test_viewer_report_is_built_from_disclosed_results(mexico, tmp_path):
    # a threshold above the 276 firms of Oaxaca's agro-food cluster: for a viewer its
    # counts are suppressed; an editor (open mode) sees them
    with _viewer_client(mexico, tmp_path, DisclosurePolicy(min_contributors=300)) as c:
        viewer = c.get("/regions/MX-OAX/report", params={
            "boundaries": "mexico_states", "clusters_run": mexico["clusters_run"]})  # fmt: skip
    assert viewer.status_code == 200, viewer.text[:300]
    assert "disclosed for a reader without access to firm microdata" in viewer.text
    # no firm is named (the register's names are "Synthetic firm N")
    assert "Synthetic firm" not in viewer.text and "MXF0" not in viewer.text
    rows = re.findall(r"<tr><td>Cluster 0</td>.*?</tr>", viewer.text, flags=re.S)
    assert all("276" not in row and "suppressed" in row for row in rows)
    # the same through the library, for a viewer principal
    lib = build_report(mexico["ws"], "MX-OAX", boundaries="mexico_states",
                       clusters_run=mexico["clusters_run"], principal=Principal("r", "viewer"),
                       policy=DisclosurePolicy(min_contributors=300)).decode()  # fmt: skip
    rows = re.findall(r"<tr><td>Cluster 0</td>.*?</tr>", lib, flags=re.S)
    assert rows and "276" not in rows[0] and "suppressed" in rows[0]
    editor = build_report(mexico["ws"], "MX-OAX", boundaries="mexico_states",
                          clusters_run=mexico["clusters_run"]).decode()  # fmt: skip
    rows = re.findall(r"<tr><td>Cluster 0</td>.*?</tr>", editor, flags=re.S)
    assert rows and ">276<" in rows[0]
    assert "without access to firm microdata" not in editor


def test_report_inputs_are_explicit(mexico, app):
    # two clusters runs of mexico_firms: the run must be named
    r = _get(app, "/regions/MX-OAX/report", boundaries="mexico_states")
    assert r.status_code == 422
    assert "clusters_run" in r.json()["detail"] and mexico["clusters_run"] in r.json()["detail"]
    assert _get(app, "/regions/MX-XXX/report", boundaries="mexico_states",
                clusters_run=mexico["clusters_run"]).status_code == 404  # fmt: skip
    assert _get(app, "/regions/MX-OAX/report", boundaries="mexico_states",
                clusters_run=mexico["clusters_run"], f="docx").status_code == 422  # fmt: skip


def test_cli_writes_the_report(mexico, tmp_path, capsys):
    out = tmp_path / "oaxaca.pdf"
    ws = str(mexico["ws"].path)
    code = main(["report", "MX-OAX", "--boundaries", "mexico_states", "--clusters-run",
                 mexico["clusters_run"], "--workspace", ws, "--out", str(out)])  # fmt: skip
    assert code == 0
    assert out.read_bytes().startswith(b"%PDF-")
    assert "Oaxaca" in _pdftotext(out.read_bytes(), tmp_path)
    html = tmp_path / "oaxaca.html"
    assert main(["report", "MX-OAX", "--boundaries", "mexico_states", "--clusters-run",
                 mexico["clusters_run"], "--workspace", ws, "--out", str(html)]) == 0  # fmt: skip
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    capsys.readouterr()
    assert main(["report", "MX-OAX", "--boundaries", "mexico_states", "--workspace", ws,
                 "--out", str(tmp_path / "x.pdf")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("geocluster: error:") and "clusters" in err
    assert "Traceback" not in err


def test_pdftotext_is_installed():
    # the PDF checks above read the report through poppler's pdftotext (Makefile sysdeps)
    assert shutil.which("pdftotext") and shutil.which("pdftoppm")
