"""Previews in the catalog browser: an image entry as a data URL, a markdown entry (a
file, or a folder's ``index.md`` or ``README.md``) as safe HTML with the images beside
it inlined (see :mod:`.markdown`). Nothing larger than :data:`PREVIEW_MAX` is read."""

from __future__ import annotations

import base64
import posixpath
from typing import Any

from ..errors import BadInput, NTError
from ..formats import guess_format, media_type
from ..fs import NTFileSystem
from . import markdown
from .rows import IMAGE_FORMATS

#: Largest entry (or image in a post) shown as a preview, in bytes.
PREVIEW_MAX = 8 << 20
_INDEX_FILES = ("index.md", "README.md")


class Previews:
    """Previews of the entries ``fs`` reads."""

    def __init__(self, fs: NTFileSystem) -> None:
        self.fs = fs

    def of(self, site: str, name: str) -> dict[str, Any]:
        """What the browser shows of ``site``'s entry ``name``: ``{"kind": "image", "src"}`` or
        ``{"kind": "markdown", "html"}``; :class:`BadInput` for an entry without a preview
        or too large, :class:`NotFound` for none of that name."""
        entry, _ = self.fs.entry(f"{site}/{name}")
        if entry.format in IMAGE_FORMATS and entry.kind == "file":
            return {"kind": "image", "src": self._data_url(f"{site}/{name}", entry.format)}
        if entry.format == "markdown" and entry.kind == "file":
            folder, index = posixpath.dirname(name), name
        elif entry.kind == "directory":
            found = [f for f in _INDEX_FILES if self.fs.exists(f"{site}/{name}/{f}")]
            if not found:
                raise BadInput(f"{site}/{name} has no {' or '.join(_INDEX_FILES)} to preview")
            folder, index = name, f"{name}/{found[0]}"
        else:
            raise BadInput(f"no preview for {entry.format} entries: open it with the code shown")
        text = self._read(f"{site}/{index}").decode("utf-8", "replace")
        return {"kind": "markdown", "html": markdown.render(text, lambda src: self._image(site, folder, src))}

    def _read(self, path: str) -> bytes:
        if self.fs.size(path) > PREVIEW_MAX:
            raise BadInput(f"{path} is larger than {PREVIEW_MAX >> 20} MiB: too large to preview")
        return bytes(self.fs.cat_file(path))

    def _data_url(self, path: str, format: str) -> str:
        data = base64.b64encode(self._read(path)).decode()
        return f"data:{media_type(format)};base64,{data}"

    def _image(self, site: str, folder: str, src: str) -> str | None:
        """The data URL of an image a markdown entry links to (beside it in ``site``)."""
        if src.startswith("data:image/"):
            return src
        path = posixpath.normpath(posixpath.join(folder, src))
        if "://" in src or path.startswith(("..", "/")):
            return None
        try:
            return self._data_url(f"{site}/{path}", guess_format(path))
        except (NTError, OSError):
            return None
