"""The pages in a real browser: headless Chromium renders them and the tests read the DOM it dumps.

Skipped where no Chromium is installed (`apt-get install chromium` on Debian). Each browser start
takes about 1-2 s.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from test_html import Marks
from test_serve import LiveServer, SlowTagger

from arner.core.conventions import Span
from arner.core.corpus import Document
from arner.core.formats import html
from arner.eval.errors_page import errors_html
from arner.eval.metrics import evaluate
from arner.inference import Entity
from arner.serve import ServeSettings, create_app

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium on PATH (Debian: apt-get install chromium)")

# an emoji first (2 UTF-16 units, 1 code point: the script must convert offsets), markup characters, a line break
TEXT = '😀 التقى <b>بوتين</b> & "ويتكوف" في موسكو\nيوم الجمعة.'
WORDS = {"بوتين": ("ACTOR", 0.912345), "موسكو": ("PLACE", 0.5), "يوم الجمعة": ("DATE", 0.987654)}


def entities_of(text: str) -> list[Entity]:
    found = [Entity(text.index(w), text.index(w) + len(w), label, w, score) for w, (label, score) in WORDS.items() if w in text]
    return sorted(found, key=lambda e: e.start)


class KeywordTagger(SlowTagger):
    """Duck-typed Tagger: the entities of `WORDS`, with their scores."""

    def predict(self, texts):
        return [entities_of(t) for t in texts]


def dump_dom(url: str, tmp_path: Path) -> str:
    """The DOM after the page's scripts ran: virtual time waits for the fetches they start."""
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    command += ["--virtual-time-budget=10000", "--dump-dom", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "</html>" in result.stdout, result.stderr[-2000:]
    return result.stdout


def doc_divs(dom: str) -> list[str]:
    """The `arner-doc` blocks as the browser serializes them (no div nests inside one)."""
    return re.findall(r'<div class="arner-doc"[^>]*>.*?</div>', dom, re.S)


def test_a_static_page_keeps_its_marks_and_direction(tmp_path):
    page = tmp_path / "predict.html"
    page.write_text(html.documents_page([("d1", TEXT), ("d2", "لا شيء هنا")], [entities_of(TEXT), []]), encoding="utf-8")
    dom = dump_dom(page.as_uri(), tmp_path)
    seen = Marks(dom)
    assert seen.docs == [{"class": "arner-doc", "dir": "rtl", "lang": "ar"}] * 2
    assert [(m["text"], m["label"], m["tag"], m["title"]) for m in seen.marks] == [
        ("بوتين", "ACTOR", "ACTOR", "ACTOR · score 0.912345"),
        ("موسكو", "PLACE", "PLACE", "PLACE · score 0.500000"),
        ("يوم الجمعة", "DATE", "DATE", "DATE · score 0.987654"),
    ]
    assert seen.text == TEXT + "لا شيء هنا" and "<b>" not in dom  # the text's markup stayed text


def test_the_errors_page_shows_gold_and_predicted_rows(tmp_path):
    gold = [Span(TEXT.index(w), TEXT.index(w) + len(w), label, w) for w, (label, _) in WORDS.items()]
    pred = [gold[0], Span(gold[1].start, gold[1].end, "ACTOR", "موسكو")]  # a type error, a missed date
    doc = Document("d1", TEXT, gold)
    _, errors = evaluate([doc], [pred], resamples=0)
    page = tmp_path / "errors.html"
    page.write_text(errors_html(errors, [doc], [Document("d1", TEXT, pred)], "Browser"), encoding="utf-8")
    dom = dump_dom(page.as_uri(), tmp_path)
    rows = re.findall(r'<tr class="arner-(gold|predicted)"><th>\1</th><td>(.*?)</td></tr>', dom, re.S)
    assert [kind for kind, _ in rows] == ["gold", "predicted"] * 2  # missed, then type: report.md's order
    missed_gold, missed_pred, type_gold, type_pred = (Marks(row) for _, row in rows)
    assert [(m["text"], m["label"]) for m in missed_gold.marks if "arner-focus" in m["classes"]] == [("يوم الجمعة", "DATE")]
    assert not [m for m in missed_pred.marks if m["text"] == "يوم الجمعة"]
    assert [m["label"] for m in type_gold.marks if m["text"] == "موسكو"] == ["PLACE"]
    assert [m["label"] for m in type_pred.marks if m["text"] == "موسكو"] == ["ACTOR"]
    assert all(d["dir"] == "rtl" for d in missed_gold.docs + type_pred.docs)


@pytest.mark.slow  # three browser starts and a server: about 3-5 s
def test_the_live_page_builds_the_markup_of_the_python_renderer(tmp_path):
    static = tmp_path / "fragment.html"
    static.write_text(html.page("fragment", html.fragment(TEXT, entities_of(TEXT))), encoding="utf-8")
    (expected,) = doc_divs(dump_dom(static.as_uri(), tmp_path))
    with LiveServer(create_app(KeywordTagger(delay=0), ServeSettings(warmup=False, max_chars=500))) as server:
        dom = dump_dom(f"{server.url}/?text={urllib.parse.quote(TEXT)}", tmp_path)
        assert re.search(r'<p id="arner-status"[^>]*data-state="done">3 entities', dom), dom[-3000:]
        assert doc_divs(dom) == [expected]  # the same markup, byte for byte, as the browser serializes both
        too_long = dump_dom(f"{server.url}/?text={urllib.parse.quote('ب' * 600)}", tmp_path)
    status = re.search(r'<p id="arner-status"[^>]*data-state="error">(.*?)</p>', too_long)
    assert status and "error 413" in status.group(1) and "max_text_chars" in status.group(1)
    assert doc_divs(too_long) == []
