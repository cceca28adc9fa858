"""The page `arner serve` answers at `/`: paste Arabic text, see its entities highlighted inline.

The page is static: its script posts the text to `POST /v1/entities` (so every limit and error of
the API applies, and the page adds no path to the model) and builds, with DOM calls only, exactly
the markup of `arner.core.formats.html.fragment`, under the same stylesheet (`STYLE`); a browser
test checks that the two agree. `/?text=...` fills the box and runs at once, so a link (or a
headless screenshot) shows a result without a click.
"""

from __future__ import annotations

import base64
import hashlib

from arner.core.formats.html import STYLE, escape, legend

# The service's offsets are code points; Array.from splits a string into code points where
# JavaScript's own indices count UTF-16 units (an emoji is 2), so slicing it keeps them exact.
SCRIPT = r"""
"use strict";
(function () {
  const form = document.getElementById("arner-form");
  const input = document.getElementById("arner-text");
  const out = document.getElementById("arner-out");
  const status = document.getElementById("arner-status");

  // the title of arner.core.formats.html.title
  function title(e) {
    return typeof e.score === "number" ? e.label + " \u00b7 score " + e.score.toFixed(6) : e.label;
  }

  // the markup of arner.core.formats.html.fragment, built as DOM nodes: the text is never parsed as HTML
  function fragment(text, entities) {
    const chars = Array.from(text);
    const doc = document.createElement("div");
    doc.className = "arner-doc";
    doc.setAttribute("dir", "rtl");
    doc.setAttribute("lang", "ar");
    let at = 0;
    for (const e of entities.slice().sort((a, b) => a.start - b.start || a.end - b.end)) {
      doc.append(chars.slice(at, e.start).join(""));
      const mark = document.createElement("mark");
      mark.className = "arner-ent";
      mark.setAttribute("data-label", e.label);
      mark.setAttribute("title", title(e));
      const tag = document.createElement("span");
      tag.className = "arner-label";
      tag.textContent = e.label;
      mark.append(chars.slice(e.start, e.end).join(""), tag);
      doc.append(mark);
      at = e.end;
    }
    doc.append(chars.slice(at).join(""));
    return doc;
  }

  function show(state, message) {
    status.textContent = message;
    status.className = state === "error" ? "arner-note arner-error" : "arner-note";
    status.setAttribute("data-state", state);
  }

  async function run(text) {
    show("running", "tagging\u2026");
    out.replaceChildren();
    let response, body;
    try {
      response = await fetch("v1/entities", {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({texts: [text]}),
      });
      body = await response.json();
    } catch (err) {
      show("error", "the request failed: " + err);
      return;
    }
    if (!response.ok) {
      show("error", "error " + response.status + ": " + (body && body.detail ? body.detail : response.statusText));
      return;
    }
    const entities = body.entities[0];
    out.replaceChildren(fragment(text, entities));
    show("done", entities.length + (entities.length === 1 ? " entity" : " entities") + "; hover one for its score.");
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(input.value);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  const given = new URLSearchParams(window.location.search).get("text");
  if (given) {
    input.value = given;
    run(given);
  }
})();
"""

PAGE_STYLE = """
#arner-text { width: 100%; box-sizing: border-box; min-height: 8em; font-size: 1.1em; padding: 0.5em;
  font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "DejaVu Sans", serif; }
#arner-form button { margin: 0.5em 0; padding: 0.4em 1.2em; font-size: 1em; }
"""
EXAMPLE = "التقى بوتين وويتكوف في موسكو يوم الجمعة."


def script_hash() -> str:
    """The script's CSP source (`'sha256-…'`): the page runs this one inline script and nothing else."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii") + "'"


def headers() -> dict[str, str]:
    """No script but ours, no request but to this server, no framing by another site."""
    csp = f"default-src 'none'; script-src {script_hash()}; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff"}


def index_html(info: dict) -> str:
    """The page, for the model `info` describes (`GET /v1/model`'s names: nothing about the host)."""
    model = info.get("model") or "?"
    base = info.get("base_model")
    about = f"model {model}" + (f" (base {base})" if base and base != model else "")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>arner</title>\n<style>{STYLE}{PAGE_STYLE}</style>\n</head>\n<body>\n"
        f'<h1>arner: Arabic news entities</h1>\n<p class="arner-note">{escape(about)}; '
        'the API is <code>POST /v1/entities</code>, its schema <a href="openapi.json">/openapi.json</a>.</p>\n'
        '<form id="arner-form">\n'
        f'<textarea id="arner-text" name="text" dir="rtl" lang="ar" placeholder="{escape(EXAMPLE)}" required></textarea>\n'
        '<button type="submit">Find entities</button> <span class="arner-note">(Ctrl+Enter)</span>\n</form>\n'
        f'{legend()}\n<p id="arner-status" class="arner-note" data-state="idle"></p>\n<div id="arner-out"></div>\n'
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
