"""Doc ids become file names (`articles/<doc>.txt`, `spans/<doc>.json`, brat `<doc>.ann`): the one rule for them.

Every reader that takes a doc id from outside (an importer, `arner predict` inputs) and every
writer that turns one into a file name calls `safe_doc_id`, so an id such as `../../x` or
`/tmp/x` can never send a write outside its output folder, whichever command is used.
"""

from __future__ import annotations

import unicodedata

MAX_DOC_ID_BYTES = 200  # well under the 255-byte name limit of common filesystems, with room for ".json"
SEPARATORS = ("/", "\\")  # both, so a folder written here is also safe to copy to Windows


def doc_id_problem(doc: object) -> str | None:
    """Why `doc` cannot be a file name of ours, or None when it can."""
    if isinstance(doc, bool) or not isinstance(doc, (str, int)):
        return f"doc id must be a string, got {doc!r}"
    doc = str(doc)
    if not doc:
        return "doc id is empty"
    if doc in (".", ".."):
        return f"doc id {doc!r} is '.' or '..'"
    if any(sep in doc for sep in SEPARATORS):
        return f"doc id {doc!r} contains a path separator ('/' or '\\')"
    if doc.startswith("."):
        return f"doc id {doc!r} starts with '.' (a hidden file)"
    if any(unicodedata.category(c) == "Cc" for c in doc):
        return f"doc id {doc!r} contains a control character"
    try:
        size = len(doc.encode("utf-8"))
    except UnicodeEncodeError:
        return f"doc id {doc!r} contains a lone surrogate (not valid Unicode)"
    if size > MAX_DOC_ID_BYTES:
        return f"doc id {doc[:40]!r}... is longer than {MAX_DOC_ID_BYTES} bytes in UTF-8 ({size})"
    return None


def safe_doc_id(doc: object, where: str, line: int | None = None, context: str = "") -> str:
    """`doc` as a string when it is a plain file name; else an AnnotationError naming `where` (and `line`).

    `context` (such as `task 3`) starts the message, for files without lines to point at.
    """
    problem = doc_id_problem(doc)
    if problem is not None:
        from arner.core.corpus import AnnotationError, Problem  # here, not on top: corpus imports this module

        raise AnnotationError([Problem(where, f"{context}: {problem}" if context else problem, line)])
    return str(doc)


def unique_doc_id(doc: object, seen: dict[str, str], where: str, line: int | None = None, context: str = "") -> str:
    """`safe_doc_id`, and not already used at a place recorded in `seen` (this one is recorded).

    A second document with an id would otherwise silently replace the first; the error names
    both places (`where:line`, or `context` when given).
    """
    doc = safe_doc_id(doc, where, line, context)
    here = context or (f"{where}:{line}" if line else where)
    if doc in seen:
        from arner.core.corpus import AnnotationError, Problem

        prefix = f"{context}: " if context else ""
        raise AnnotationError([Problem(where, f"{prefix}duplicate doc id {doc!r} (also at {seen[doc]})", line)])
    seen[doc] = here
    return doc
