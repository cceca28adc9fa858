"""Bad annotation inputs and unsafe names: one clean error, nothing written outside the output, nothing lost.

The fuzz test at the end mutates valid files (characters deleted, duplicated, replaced; JSON
values swapped for other types, deep nesting, unsafe ids) and feeds them to `corpus.check`,
`corpus.load` and every importer followed by `corpus.save`.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arner.cli import app
from arner.core import atomic, corpus, names
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError, Document
from arner.core.formats import EXPORTERS, IMPORTERS, brat, texts

from conftest import ANNOTATIONS, TEXT, snapshot, span, write_folder

runner = CliRunner()


# --- doc ids used as file names -------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ("", "empty"),
        (".", "'.' or '..'"),
        ("..", "'.' or '..'"),
        ("../../escaped", "path separator"),
        ("/tmp/abs", "path separator"),
        ("a\\b", "path separator"),
        (".hidden", "starts with '.'"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("x" * 201, "longer than 200 bytes"),
        ("\ud800", "lone surrogate"),
        (True, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_safe_doc_id_rejects_names_that_are_not_plain_file_names(doc, why):
    with pytest.raises(AnnotationError) as e:
        names.safe_doc_id(doc, "in.json", 3)
    (problem,) = e.value.problems
    assert problem.path == "in.json" and problem.line == 3 and why in problem.message


@pytest.mark.parametrize("doc", ["doc1", "تقرير-٢٠٢٤", "a b.c", "x" * 200, 7])
def test_safe_doc_id_accepts_plain_names(doc):
    assert names.safe_doc_id(doc, "in.json") == str(doc)


@pytest.mark.parametrize("fmt", ["labelstudio", "doccano"])
def test_import_never_writes_outside_the_output_folder(tmp_path, fmt):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    absolute = str(tmp_path / "abs")
    docs = [Document("../../escaped", TEXT, []), Document(absolute, TEXT, [])]
    src = work / f"in.{fmt}"
    EXPORTERS[fmt](docs, src)
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["annotations", "import", "--format", fmt, str(src), "--out", str(work / "out")])
    assert result.exit_code == 1, result.output
    assert "in." + fmt in result.output and "../../escaped" in result.output and "path separator" in result.output
    assert snapshot(tmp_path) == before


def test_predict_brat_refuses_ids_that_are_not_file_names(tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [{"id": str(tmp_path / "abs_pred"), "text": "بوتين"}, {"id": "a/b", "text": "موسكو"}, {"id": "ok", "text": "أمس"}]
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(AnnotationError) as e:
        texts.read_inputs([str(src)])
    assert [(p.line, "path separator" in p.message) for p in e.value.problems] == [(1, True), (2, True)]
    with pytest.raises(AnnotationError, match="path separator"):
        texts.render("brat", [("a/b", "موسكو")], [[]], tmp_path / "brat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_brat_export_checks_every_doc_id(tmp_path):
    with pytest.raises(AnnotationError, match="'.' or '..'"):
        brat.export([Document("..", TEXT, [])], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


# --- unreadable or malformed annotation files ---------------------------------------------------


def _break(root: Path, how: str) -> Path:
    """Break one file of a good folder; return the path the error must name."""
    spans, articles = root / "spans", root / "articles"
    if how == "dangling span symlink":
        (spans / "ghost.json").symlink_to(root / "nowhere.json")
        return spans / "ghost.json"
    if how == "dangling article symlink":
        (articles / "ghost.txt").symlink_to(root / "nowhere.txt")
        return articles / "ghost.txt"
    if how == "symlink loop":
        (spans / "loop.json").symlink_to(spans / "loop.json")
        return spans / "loop.json"
    if how == "folder named like a span file":
        (spans / "folder.json").mkdir()
        return spans / "folder.json"
    if how == "folder named like an article":
        (articles / "folder.txt").mkdir()
        return articles / "folder.txt"
    path = spans / "doc1.json"
    if how == "nested too deep":
        path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    elif how == "huge number":
        path.write_text('{"doc": "doc1", "spans": [{"start": ' + "9" * 5000 + "}]}", encoding="utf-8")
    elif how == "not UTF-8":
        path.write_bytes(b'{"doc": "doc1", "spans": []}\n\xff')
    return path


BREAKS = [
    "dangling span symlink",
    "dangling article symlink",
    "symlink loop",
    "folder named like a span file",
    "folder named like an article",
    "nested too deep",
    "huge number",
    "not UTF-8",
]


@pytest.mark.parametrize("how", BREAKS)
def test_unreadable_files_are_one_clean_problem_naming_the_file(good_folder, how):
    path = _break(good_folder, how)
    _, problems = corpus.check(good_folder)
    errors = [p for p in problems if p.severity == "error"]
    assert errors and all(p.path == str(path) for p in errors), errors
    with pytest.raises(AnnotationError):
        corpus.load(good_folder)
    result = runner.invoke(app, ["annotations", "check", str(good_folder)])
    assert result.exit_code == 1 and str(path) in result.output and "Traceback" not in result.output


def test_nested_too_deep_says_so(good_folder):
    path = _break(good_folder, "nested too deep")
    (error,) = [p for p in corpus.check(good_folder)[1] if p.severity == "error"]
    assert error.path == str(path) and "nested too deep" in error.message


def test_symlinked_article_outside_the_folder_is_refused(tmp_path, good_folder):
    outside = tmp_path / "outside.txt"
    outside.write_text(TEXT, encoding="utf-8")
    link = good_folder / "articles" / "doc1.txt"
    link.unlink()
    link.symlink_to(outside)
    errors = [p for p in corpus.check(good_folder)[1] if p.severity == "error"]
    assert [p.path for p in errors] == [str(link)] and str(outside) in errors[0].message and "outside" in errors[0].message
    inside = good_folder / "copy.txt"
    inside.write_text(TEXT, encoding="utf-8")
    link.unlink()
    link.symlink_to(inside)
    assert corpus.check(good_folder)[1] == []


# --- output folders ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", [".", "..", "../..", "/", "here"])
def test_atomic_directory_refuses_the_cwd_its_parents_and_the_root(tmp_path, monkeypatch, target):
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    path = cwd if target == "here" else Path(target)
    with pytest.raises(ValueError, match="refusing"):
        with atomic.directory(path) as tmp:
            (tmp / "x").write_text("x")
    assert (
        list(cwd.iterdir()) == []
        and [p.name for p in tmp_path.iterdir()] == ["a"]
        and [p.name for p in (tmp_path / "a").iterdir()] == ["b"]
    )


def test_eval_out_dot_is_refused_cleanly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["eval", "--gold", str(ANNOTATIONS), "--pred", "nope.jsonl", "--out", "."])
    assert result.exit_code == 2 and "refusing" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic.write_text(tmp_path / "f.txt", "x")
        with atomic.directory(tmp_path / "d") as tmp:
            (tmp / "inner.txt").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask


def test_temp_files_are_recognizable_and_stale_ones_are_swept(tmp_path, monkeypatch):
    target = tmp_path / "pred.jsonl"
    dead = 2**22 + 12345  # above Linux's largest pid: never a live process
    stale = tmp_path / f".pred.jsonl.arner-tmp-{dead}-old1"
    fresh = tmp_path / f".pred.jsonl.arner-tmp-{dead}-new1"
    alive = tmp_path / f".pred.jsonl.arner-tmp-{os.getpid()}-mine"
    other = tmp_path / f".other.jsonl.arner-tmp-{dead}-old2"
    for p in (stale, fresh, alive, other):
        p.write_text("half")
    hours_ago = time.time() - 2 * 3600
    for p in (stale, alive, other):
        os.utime(p, (hours_ago, hours_ago))
    atomic.write_text(target, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, fresh.name, alive.name, other.name])

    seen = []

    def killed(src, dst):  # as if the process died before the rename: the temp is left behind
        seen.append(Path(src).name)
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_text(target, "newer")
    assert seen[0].startswith(".pred.jsonl.arner-tmp-")


# --- fuzz: mutated annotation files ---------------------------------------------------------------

SPANS = [span(TEXT, "بوتين", "ACTOR"), span(TEXT, "ويتكوف", "ACTOR"), span(TEXT, "موسكو", "PLACE")]
NASTY_VALUES = [None, True, False, 1.5, -3, 10**30, "9", "", "x", [], {}, [[1, 2, "ACTOR"]], {"start": 1}, "\ud800"]
NASTY_IDS = ["../../escaped", "/ABS/abs", "a/b", ".", "..", "", ".hidden", "a\x00b", "x" * 300]
DEEP = {"__deep__": 100_000}
CHARS = list('{}[]",:0123456789-. \\nultrfase') + ["\\ud800", "\\u0000", "\x00", "ب", "\n", "\t", "T"]


def _mutate_value(rng: random.Random, value, sandbox: Path):
    """`value` with one node somewhere inside replaced by something of another type (or a key dropped)."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        if rng.random() < 0.15:
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: _mutate_value(rng, value[key], sandbox)}
    if isinstance(value, list) and value and rng.random() < 0.7:
        i = rng.randrange(len(value))
        return value[:i] + [_mutate_value(rng, value[i], sandbox)] + value[i + 1 :]
    pick = rng.random()
    if pick < 0.2:
        return rng.choice(NASTY_IDS).replace("/ABS", str(sandbox))
    if pick < 0.25:
        return DEEP  # spliced in as 100K nested brackets once dumped
    return rng.choice(NASTY_VALUES)


def _mutate_text(rng: random.Random, raw: str) -> str:
    """Characters deleted, duplicated or replaced at a few random places."""
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(raw) + 1)
        j = min(len(raw), i + rng.randint(1, 8))
        op = rng.random()
        if op < 0.33:
            raw = raw[:i] + raw[j:]
        elif op < 0.66:
            raw = raw[:j] + raw[i:j] + raw[j:]
        else:
            raw = raw[:i] + rng.choice(CHARS) + raw[i + 1 :]
    return raw


def _mutate_json(rng: random.Random, raw: str, sandbox: Path) -> str:
    out = json.dumps(_mutate_value(rng, json.loads(raw), sandbox), ensure_ascii=False)
    return out.replace(json.dumps(DEEP), "[" * 100_000 + "]" * 100_000)


def _mutated(rng: random.Random, path: Path, sandbox: Path) -> bytes:
    """A mutated copy of a valid file, as bytes (sometimes not UTF-8, sometimes nested 100K deep)."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl" and rng.random() < 0.5:  # doccano: one line's JSON
        lines = raw.splitlines()
        i = rng.randrange(len(lines))
        lines[i] = _mutate_json(rng, lines[i], sandbox)
        raw = "\n".join(lines) + "\n"
    elif path.suffix == ".json" and rng.random() < 0.5:
        raw = _mutate_json(rng, raw, sandbox)
    else:
        raw = _mutate_text(rng, raw)
    data = raw.encode("utf-8", "surrogatepass")
    return data + b"\xff" if rng.random() < 0.05 else data


def _existing_output(root: Path) -> dict[str, bytes]:
    write_folder(root, {"old": (TEXT, SPANS)})
    (root / "GUIDELINES.md").write_text("keep me", encoding="utf-8")
    return snapshot(root)


def _outside(sandbox: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(sandbox).items() if not k.startswith("deep")}


def _fuzz_one(rng: random.Random, sandbox: Path, kind: str) -> None:
    """One mutated input through its reader (then `corpus.save`); asserts the guarantees."""
    inputs = sandbox / "in"
    out = sandbox / "deep" / "er" / "out"
    before_out = _existing_output(out)
    docs = [Document("doc1", TEXT, [Span(**s) for s in SPANS]), Document("doc2", TEXT[:20], [])]
    if kind == "folder":
        write_folder(inputs, {"doc1": (TEXT, SPANS)})
        victim = inputs / rng.choice(["spans/doc1.json", "spans/doc1.json", "articles/doc1.txt"])
    elif kind == "brat":
        brat.export(docs, inputs)
        victim = inputs / rng.choice(["doc1.ann", "doc1.ann", "doc1.txt"])
    else:
        victim = inputs / ("in.json" if kind == "labelstudio" else "in.jsonl")
        EXPORTERS[kind](docs, victim)
    victim.write_bytes(_mutated(rng, victim, sandbox))
    before = _outside(sandbox)
    try:
        if kind == "folder":
            corpus.check(inputs)  # never raises: every problem is returned
            documents = corpus.load(inputs)
        else:
            documents = IMPORTERS[kind](inputs if kind == "brat" else victim)
        corpus.save(documents, out)
    except (AnnotationError, ValueError):
        assert snapshot(out) == before_out, "a failed import changed the output folder"
    else:
        after = snapshot(out)
        assert after["GUIDELINES.md"] == b"keep me"
        assert {k for k in after if k.startswith("spans/")} == {f"spans/{d.doc}.json" for d in documents}
    assert _outside(sandbox) == before, "something was written outside the output folder"
    assert not any(".arner-tmp-" in k for k in snapshot(sandbox)), "a temp file was left behind"


FUZZ_CASES = int(os.environ.get("ARNER_FUZZ_CASES", "120"))  # ~1 s per kind; raise it for a longer hunt


@pytest.mark.parametrize("kind", ["folder", "labelstudio", "doccano", "brat"])
def test_fuzz_malformed_inputs_fail_cleanly_and_lose_nothing(tmp_path, kind):
    rng = random.Random(f"arner-{kind}")  # seeded: a failure replays exactly
    for i in range(FUZZ_CASES):
        _fuzz_one(rng, tmp_path / f"case{i}", kind)


def test_a_swap_killed_between_its_renames_is_undone_by_the_next_write(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    target = tmp_path / "spans"
    old = tmp_path / f".spans{atomic.TMP_MARK}{dead}-abcd-old"  # what _swap leaves when killed after moving the old folder aside
    old.mkdir()
    (old / "doc.json").write_text("kept", encoding="utf-8")
    atomic.sweep_stale(target)
    assert (target / "doc.json").read_text(encoding="utf-8") == "kept" and not old.exists()
