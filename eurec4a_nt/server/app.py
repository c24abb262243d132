"""The site server: an aiohttp application built by :func:`make_app`.

One module per URL family (``objects``, ``data``, ``catalog``, ``logs``,
``publish``, ``pages``); links to other sites come from :mod:`eurec4a_nt.sync`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from ..errors import BadInput, Forbidden, NTError, TooLarge, Unauthorized
from ..index import Index
from ..node import Node
from ..sitestore import SiteStore
from ..sync import links as link_routes
from ..sync.links import LINKS, Links
from . import catalog, data, logs, objects, pages, publish, views
from .answers import ANSWERS, Answers
from .auth import Tokens
from .context import CONFIG, MAX_JSON_BODY, NODE, TOKENS, ServerConfig, read_credential
from .respond import etag_matches
from .watch import start_watching

log = logging.getLogger(__name__)

#: The ``error`` code of HTTP errors raised by aiohttp itself (unknown route, ...).
_HTTP_CODES = {400: "bad-input", 404: "not-found", 405: "method-not-allowed",
               413: "too-large", 416: "range-not-satisfiable"}
#: Paths open without a read token: monitoring, links (they prove their site), the login form.
_OPEN_PATHS = ("/health", "/link", "/login")
#: Headers of aiohttp's HTTP errors that a JSON answer keeps.
_KEPT_HEADERS = ("Allow", "Content-Range", "Location", "Retry-After", "WWW-Authenticate")


def error_response(exc: NTError) -> web.Response:
    response = web.json_response(exc.to_json(), status=exc.status)
    retry = getattr(exc, "retry_after", None)
    if retry:
        response.headers["Retry-After"] = str(retry)
    return response


def http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    """An aiohttp HTTP error (404 of an unknown route, 405, 416 ...) as our JSON error."""
    if exc.status == 404:
        message = f"nothing at {request.path} (see docs/http-api.md for the endpoints)"
    elif exc.status == 405:
        message = f"{request.method} is not allowed on {request.path}"
    else:
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    headers = {k: exc.headers[k] for k in _KEPT_HEADERS if k in exc.headers}
    return web.json_response({"error": _HTTP_CODES.get(exc.status, f"http-{exc.status}"),
                              "message": message}, status=exc.status, headers=headers)


def revalidatable(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Give a small changing GET answer (JSON, YAML, HTML) an ETag of its body and
    ``Cache-Control: no-cache``, and answer 304 when the client holds that body.

    So a catalog or an entry list is revalidated cheaply, and a client cache (the
    client's requests-cache) can keep it for when the server cannot be reached.
    """
    if (request.method not in ("GET", "HEAD") or response.status != 200
            or not isinstance(response, web.Response) or not isinstance(response.body, bytes)):
        return response
    if "ETag" not in response.headers:
        response.headers["ETag"] = f'"{hashlib.sha256(response.body).hexdigest()[:32]}"'
    response.headers.setdefault("Cache-Control", "no-cache")
    if etag_matches(request.headers.get("If-None-Match", ""), response.headers["ETag"]):
        return web.Response(status=304, headers={k: response.headers[k] for k in ("ETag", "Cache-Control")})
    return response


@web.middleware
async def errors_and_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    """Map our errors, and aiohttp's HTTP errors, to JSON with the right status; check
    read tokens when required; make small GET answers revalidatable."""
    try:
        if request.app[CONFIG].read_token and request.path not in _OPEN_PATHS:
            request.app[TOKENS].require(read_credential(request), "read")
        return revalidatable(request, await handler(request))
    except (Unauthorized, Forbidden) as exc:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            return pages.login_page(request, str(exc))  # a browser: ask for the token
        return error_response(exc)
    except NTError as exc:
        return error_response(exc)
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(TooLarge(exc.text or "request body too large"))
    except (HttpProcessingError, RequestPayloadError) as exc:  # a body cut, mis-encoded, a line too long
        return error_response(BadInput(f"malformed request body: {' '.join(str(exc).split())[:200]}"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_error_response(request, exc)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        transport = request.transport
        if isinstance(exc, ConnectionError) and (transport is None or transport.is_closing()):
            # the client hung up mid-request: one line, and an answer nobody reads
            log.info("%s %s: the client went away (%s)", request.method, request.path, exc or type(exc).__name__)
            return error_response(BadInput("the connection was lost"))
        # a bug: answer JSON, keep serving
        log.exception("unexpected error in %s %s", request.method, request.path)
        return web.json_response({"error": "internal", "message": f"{type(exc).__name__}: {exc}"},
                                 status=500)


def make_app(config: ServerConfig) -> web.Application:
    """Build the site server for ``config``; the store must exist (``eurec4a-nt init``)."""
    app = web.Application(middlewares=[errors_and_auth], client_max_size=MAX_JSON_BODY)
    app[CONFIG] = config
    app[TOKENS] = Tokens(config.store / "tokens.yaml")
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_links)
    for module in (objects, data, views, catalog, logs, publish, pages, link_routes):
        app.add_routes(module.routes)
    return app


async def _close_links(app: web.Application) -> None:
    """Stop the links (started in :func:`_lifecycle`) as the server begins to stop, before
    it waits for the requests still open: a link dialled in, or a read waiting on a
    link, would otherwise hold the stopping server for a minute (its requests' grace
    time)."""
    await app[LINKS].stop()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = SiteStore(config.store, keyring=config.keyring)
    if config.site and store.site != config.site:
        raise NTError(f"the store at {config.store} belongs to {store.site or 'no site'}, "
                      f"not {config.site}: run 'eurec4a-nt init {config.site} --store {config.store}'")
    index_path = config.store / "state" / "index.sqlite"
    fresh = not index_path.exists()
    index = Index(index_path)
    if await asyncio.to_thread(index.open_session, store.objects):
        log.info("index built from the store" if fresh else
                 "index rebuilt from the store (last run did not stop cleanly)")
    node_ = Node(store, index, cache_cap=config.cache_cap, pinned_topics=config.pinned_topics)
    app[NODE] = node_
    app[ANSWERS] = answers = Answers(config.store / "state" / "catalogs.sqlite")
    links = Links(node_, config.links, ca_file=config.ca_file)
    app[LINKS] = links
    flusher = asyncio.create_task(_flush_access(index))
    follower = asyncio.create_task(_follow_logs(node_))
    # every site's folder summaries and index, made ready before the first reader asks
    warming = asyncio.create_task(asyncio.to_thread(store.warm))
    await links.start()
    stop_watching = threading.Event()
    watchers = start_watching(node_, config.watch, stop_watching)
    try:
        yield
    finally:
        stop_watching.set()
        for thread in watchers:
            await asyncio.to_thread(thread.join, 10)
        flusher.cancel()
        follower.cancel()
        await asyncio.gather(warming, return_exceptions=True)
        index.close()
        answers.close()
        store.objects.close()


#: Seconds between looks for commits other server processes of this store made.
FOLLOW_LOGS = 1.0


async def _follow_logs(node_: Node) -> None:
    """Pick up commits made through other processes of this store (several servers on
    one bucket, or on one folder), so this one pushes them over its links too."""
    while True:
        await asyncio.sleep(FOLLOW_LOGS)
        try:
            await node_.follow_logs()
        except (NTError, OSError) as exc:  # a damaged log, or the bucket out of reach
            log.error("reading the site logs: %s", exc)


async def _flush_access(index: Index) -> None:
    while True:
        await asyncio.sleep(5)
        await asyncio.to_thread(index.flush_access)
