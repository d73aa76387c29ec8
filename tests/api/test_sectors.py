"""``GET /sectors`` and ``GET /me``: what the map's analysis panel lists and may run."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings


def test_sectors_list_sections_divisions_and_groups(tmp_path):
    with TestClient(create_app(Settings(workspace=tmp_path / "ws"))) as c:
        r = c.get("/sectors")
    assert r.status_code == 200
    body = r.json()
    assert body["scheme"] == "isic4"
    # ISIC Rev.4 has 21 sections and 88 divisions (UN Statistics Division, ISIC Rev.4,
    # Statistical Papers Series M No. 4/Rev.4, 2008, Part Three).
    assert len(body["sections"]) == 21 and len(body["divisions"]) == 88
    sections = {s["code"]: s["title"] for s in body["sections"]}
    assert sections["C"] == "Manufacturing"
    divisions = {d["code"]: d for d in body["divisions"]}
    assert divisions["15"] == {
        "code": "15",
        "title": "Manufacture of leather and related products",
        "section": "C",
    }
    assert divisions["01"]["section"] == "A" and divisions["99"]["section"] == "U"
    groups = {g["name"]: g for g in body["groups"]}
    # the built-in groups as geocluster/sectors/GROUPS.md defines them
    assert groups["agro_food"]["divisions"] == ["01", "03", "10", "11", "12"]
    assert groups["tourism"]["divisions"] == ["55", "56", "79", "91", "93"]
    assert all(g["note"] for g in groups.values())


def test_every_listed_code_is_accepted_by_the_analyses(demo_client):
    """The panel sends what /sectors lists: a division, a section and a group all run."""
    body = demo_client.get("/sectors").json()
    division = next(d["code"] for d in body["divisions"] if d["code"] == "15")
    n_firms = {}
    for key, payload in (
        ("division", {"sectors": [division]}),
        ("section", {"sectors": ["C"]}),
        ("group", {"sector_group": "agro_food"}),
    ):
        r = demo_client.post("/analyses/kdistance", json={"firms": "firms", "k": 5, **payload})
        assert r.status_code == 200, r.text
        assert r.json()["suggested_eps_m"] > 0
        n_firms[key] = r.json()["n_firms"]
    # division 15 lies in section C, so the section holds at least its firms
    assert 0 < n_firms["division"] <= n_firms["section"]
    assert 0 < n_firms["group"]


def test_me_is_the_admin_in_open_mode(tmp_path):
    with TestClient(create_app(Settings(workspace=tmp_path / "ws"))) as c:
        r = c.get("/me")
    assert r.status_code == 200
    assert r.json() == {"role": "admin", "auth": "open", "can_run": True}
