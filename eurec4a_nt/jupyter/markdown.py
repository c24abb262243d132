"""A small, safe Markdown renderer for previews of blog posts and notes.

It covers what campaign posts use: headings, paragraphs, lists, fenced code, emphasis,
inline code, links and images. The output is safe to put in a page: all text is
HTML-escaped before any markup is added, links keep only ``http``, ``https`` and
``mailto`` targets, and images show only what ``image(src)`` returns (a data URL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape, unescape

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![\w*])[*_](?![\s*_])(.+?)(?<![\s*_])[*_](?![\w*])")
_HEADING = re.compile(r"(#{1,6})\s+(.*)")
_BULLET = re.compile(r"\s*[-*+]\s+(.*)")
_NUMBER = re.compile(r"\s*\d+[.)]\s+(.*)")
_SAFE_LINK = re.compile(r"(https?:|mailto:)", re.IGNORECASE)


def _text(text: str, image: Callable[[str], str | None]) -> str:
    """Escape ``text`` (no code spans in it) and render its links, images and emphasis."""
    kept: list[str] = []  # finished links and images, kept out of the emphasis rules

    def keep(html: str) -> str:
        kept.append(html)
        return f"\0{len(kept) - 1}\0"

    def picture(m: re.Match[str]) -> str:
        src = image(unescape(m.group(2)))
        return keep(f'<img src="{escape(src)}" alt="{m.group(1)}">' if src else f"[{m.group(1)}]")

    def link(m: re.Match[str]) -> str:
        href = unescape(m.group(2))
        if not _SAFE_LINK.match(href):
            return m.group(1)
        return keep(f'<a href="{escape(href)}" target="_blank" rel="noopener">{m.group(1)}</a>')

    html = _LINK.sub(link, _IMAGE.sub(picture, escape(text.replace("\0", ""))))
    html = _EM.sub(r"<em>\1</em>", _STRONG.sub(r"<strong>\1</strong>", html))
    return re.sub("\0(\\d+)\0", lambda m: kept[int(m.group(1))], html)


def _inline(text: str, image: Callable[[str], str | None]) -> str:
    """Escape ``text`` and render the inline markup in it; code spans stay literal."""
    parts = _CODE.split(text)
    return "".join(f"<code>{escape(part)}</code>" if i % 2 else _text(part, image)
                   for i, part in enumerate(parts))


def render(text: str, image: Callable[[str], str | None] = lambda src: None) -> str:
    """Markdown ``text`` as safe HTML; ``image(src)`` gives the URL an image shows
    (None leaves its alt text)."""
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    list_tag = ""
    lines = text.replace("\r\n", "\n").split("\n")

    def flush() -> None:
        nonlocal list_tag
        if paragraph:
            blocks.append(f"<p>{_inline(' '.join(paragraph), image)}</p>")
            paragraph.clear()
        if items:
            blocks.append(f"<{list_tag}>" + "".join(f"<li>{i}</li>" for i in items) + f"</{list_tag}>")
            items.clear()
            list_tag = ""

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith("```"):
                code.append(lines[i])
                i += 1
            blocks.append(f"<pre><code>{escape(chr(10).join(code))}</code></pre>")
        elif heading := _HEADING.fullmatch(line.strip()):
            flush()
            level = len(heading.group(1))
            blocks.append(f"<h{level}>{_inline(heading.group(2), image)}</h{level}>")
        elif item := _BULLET.fullmatch(line) or _NUMBER.fullmatch(line):
            tag = "ul" if item.re is _BULLET else "ol"
            if paragraph or (items and tag != list_tag):
                flush()
            list_tag = tag
            items.append(_inline(item.group(1), image))
        elif not line.strip():
            flush()
        else:
            if items:
                flush()
            paragraph.append(line.strip())
        i += 1
    flush()
    return "\n".join(blocks)
