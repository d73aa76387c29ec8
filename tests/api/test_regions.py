"""``/regions``: profile, compare, peers through HTTP."""

from __future__ import annotations


def test_profile(demo_client):
    r = demo_client.get("/regions/R10/profile?boundaries=regions&firms=firms&indicators=indicators")
    assert r.status_code == 200, r.text
    body = r.json()
    assert "R10" in str(body)


def test_profile_matches_the_library(demo_client, demo):
    from geocluster.analyses.territories import profile_result
    from geocluster.disclosure import apply

    result = profile_result(demo["ws"], "R00", boundaries="regions", firms="firms")
    direct = apply(result, None, demo_client.app.state.policy).to_body()
    via_http = demo_client.get("/regions/R00/profile?boundaries=regions&firms=firms").json()
    assert via_http == direct
    # the firm counts passed the disclosure seam, and the inputs are named with versions
    assert via_http["firms"]["disclosure"] in ("ok", "few_contributors")
    assert {"regions@1", "firms@1"} <= set(via_http["inputs"])


def test_unknown_region_is_404(demo_client):
    r = demo_client.get("/regions/ZZ/profile?boundaries=regions")
    assert r.status_code == 404 and "ZZ" in r.json()["detail"]
    assert demo_client.get("/regions/R00/profile?boundaries=nope").status_code == 404
    assert demo_client.get("/regions/R00/profile?boundaries=firms").status_code == 422


def test_compare(demo_client):
    r = demo_client.get(
        "/regions/compare?ids=R00,R10,R20&boundaries=regions&firms=firms&indicators=indicators"
    )
    assert r.status_code == 200, r.text
    text = str(r.json())
    assert all(rid in text for rid in ("R00", "R10", "R20"))
    r = demo_client.get("/regions/compare?ids=R00&boundaries=regions")
    assert r.status_code == 422 and "at least 2" in r.json()["detail"]
    assert demo_client.get("/regions/compare?boundaries=regions").status_code == 422


def test_peers(demo_client):
    r = demo_client.get("/regions/R00/peers?k=2&boundaries=regions&indicators=indicators")
    assert r.status_code == 200, r.text
    assert "R00" in str(r.json())
    assert demo_client.get("/regions/R00/peers?k=0&boundaries=regions").status_code == 422
