"""Notebook support: the catalog browser widget (:mod:`.browser`), HTML reprs
(:mod:`.reprs`) and site servers for the worked notebooks (:mod:`.demo`).

Importing this package registers the HTML views of entries and data sources
(:mod:`eurec4a_nt.display`) and those of eurec4a-nt intake catalogs with the running
IPython, if there is one (:func:`register_catalog_repr`); it imports neither IPython
nor anywidget itself. ``import eurec4a_nt`` imports it when IPython is running.
"""

from __future__ import annotations

import sys
from typing import Any

from .. import display
from .reprs import catalog_html, entries_html, entry_html, source_html

__all__ = ["register_catalog_repr"]


def _display_catalog(cat: Any) -> None:
    """Show a eurec4a-nt catalog as HTML; hand any other catalog back to intake."""
    html = catalog_html(cat)
    if html is None:
        type(cat)._ipython_display_(cat)
        return
    from IPython.display import display

    display({"text/html": html, "text/plain": f"<eurec4a-nt catalog {cat.name}>"}, raw=True)


def register_catalog_repr() -> bool:
    """Show eurec4a-nt intake catalogs as HTML in the running IPython; return False
    (and do nothing) outside IPython. Calling it again changes nothing.

    Intake catalogs display themselves as YAML through ``_ipython_display_``, which
    IPython asks before any ``text/html`` formatter. So this registers a display
    formatter for the catalogs ``open_catalog`` returns (and intake's
    ``YAMLFileCatalog``, for the catalogs a site server serves): the catalog object stays intake's own, unpatched, and
    catalogs that are not eurec4a-nt's keep intake's display.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    from intake.catalog.local import YAMLFileCatalog

    from ..nested import FolderCatalog, SitesCatalog

    for kind in (YAMLFileCatalog, SitesCatalog, FolderCatalog):
        shell.display_formatter.ipython_display_formatter.for_type(kind, _display_catalog)
    return True


display.register("entry", entry_html)
display.register("entries", entries_html)
display.register("source", source_html)
register_catalog_repr()
