"""Markdown previews of blog posts and notes, rendered by markdown-it-py (CommonMark).

Safe to put in a page: raw HTML in the text is escaped, never passed through; links and
images keep only relative, ``http``, ``https``, ``mailto`` and ``data:image/`` (png,
jpeg, gif) targets (others stay plain text), links open in a new tab, and images show
only what ``image(src)`` returns (a data URL), else their alt text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

_SAFE_SCHEMES = ("http:", "https:", "mailto:", "data:image/png;", "data:image/jpeg;", "data:image/gif;")


def _allowed(url: str) -> bool:
    url = re.sub(r"[\x00-\x20\x7f]", "", url).lower()  # browsers ignore these inside a scheme
    scheme = re.match(r"[a-z][a-z0-9+.-]*:", url)
    return scheme is None or url.startswith(_SAFE_SCHEMES)


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    token = tokens[idx]
    alt = escape(self.renderInlineAsText(token.children or [], options, env))
    src = env["image"](str(token.attrGet("src") or ""))
    return f'<img src="{escape(src)}" alt="{alt}">' if src else f"[{alt}]"


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    tokens[idx].attrSet("target", "_blank")
    tokens[idx].attrSet("rel", "noopener")
    return str(self.renderToken(tokens, idx, options, env))


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.validateLink = _allowed  # type: ignore[method-assign]
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _parser()


def render(text: str, image: Callable[[str], str | None] = lambda src: None) -> str:
    """Markdown ``text`` as safe HTML; ``image(src)`` gives the URL an image shows
    (None leaves its alt text in brackets)."""
    return str(_MD.render(text, {"image": image}))
