"""The page `arner serve` answers at `/` (the browser runs its script in tests/test_html_browser.py)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from test_serve import SlowTagger

from arner.core.formats.html import STYLE
from arner.serve import ServeSettings, create_app
from arner.serve.page import index_html

from conftest import TEXT


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(SlowTagger(delay=0), ServeSettings(warmup=False))) as c:
        yield c


def test_the_page_is_served_at_the_root(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    page = r.text
    assert '<textarea id="arner-text" name="text" dir="rtl" lang="ar"' in page and '<button type="submit">' in page
    assert STYLE in page and re.findall(r'<mark class="arner-ent" data-label="(\w+)">', page) == ["ACTOR", "PLACE", "DATE"]
    assert "model fake" in page
    assert not re.search(r"""src=|@import|url\(|https?://""", page)  # nothing from elsewhere: the machine may be offline
    # the query string is read by the script, so the same static page serves /?text=...
    assert client.get("/", params={"text": TEXT}).text == page


def test_the_content_security_policy_allows_exactly_the_page_script(client):
    r = client.get("/")
    (script,) = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == f"'sha256-{digest}'" and csp["connect-src"] == "'self'" and csp["default-src"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_api_is_untouched(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/v1/model").json()["model"] == "fake"
    r = client.post("/v1/entities", json={"texts": ["abc", ""]})
    assert r.status_code == 200 and r.json() == {"entities": [[{"start": 0, "end": 3, "label": "ACTOR", "text": "abc", "score": 1.0}], []]}
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and {"/healthz", "/v1/model", "/v1/entities"} <= set(paths)
    assert client.post("/", json={"texts": ["abc"]}).status_code == 405


def test_the_model_name_is_escaped():
    page = index_html({"model": "<img src=x onerror=alert(1)>", "base_model": "a&b"})
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page and "a&amp;b" in page
