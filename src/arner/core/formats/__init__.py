"""Exchange formats for annotation folders: export to all, import back from the annotation tools'.

Offsets in every format are Unicode code points of the unnormalized article text, as
in the spec (Label Studio stores code points too; brat counts characters).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from arner.core.corpus import Document
from arner.core.formats import brat, conll, doccano, hf, labelstudio

Exporter = Callable[[list[Document], Path], None]
Importer = Callable[[Path], list[Document]]

EXPORTERS: dict[str, Exporter] = {
    "conll": conll.export,
    "hf": hf.export,
    "labelstudio": labelstudio.export,
    "doccano": doccano.export,
    "brat": brat.export,
}
IMPORTERS: dict[str, Importer] = {
    "labelstudio": labelstudio.load,
    "doccano": doccano.load,
    "brat": brat.load,
}
