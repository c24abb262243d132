"""Notebook support against real site servers: the HTML reprs (entries, publish results,
catalogs, through IPython's display machinery too), the markdown previews, and the
catalog browser widget's Python side (rows, filters, refresh, preview, prefetch)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from server_kit import start

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata
from eurec4a_nt.demokit.campaign import Campaign, Remote
from eurec4a_nt.demokit.emulator import LinkProfile
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.errors import BadInput, Unauthorized
from eurec4a_nt.jupyter import markdown, register_catalog_repr
from eurec4a_nt.jupyter.browser import CatalogBrowser
from eurec4a_nt.jupyter.reprs import catalog_html, human_size, open_code
from eurec4a_nt.jupyter.rows import state_of
from eurec4a_nt.sitestore import SiteStore

NASTY = "<script>alert('x')</script> & \"quoted\""
SONDE = "sondes/EUREC4A_RV-Meteor_sonde_L2_20200205T1045.nc"
QUICKLOOKS = ["quicklooks/ceilometer.png", "quicklooks/cloud-radar.png"]
POST = "blog/day-3.md"


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return value


def publish_sample(proc: SiteProcess, folder: Path) -> dict[str, nt.Entry]:
    """A sounding (with a nasty description), two quicklooks and a blog post."""
    folder.mkdir(exist_ok=True)
    out = {SONDE: nt.publish(sampledata.sonde(folder / "s.nc", seed=1, levels=500), name=SONDE,
                             topics=["sondes", "processed"], description=NASTY, server=proc.url,
                             token=proc.token, progress=False)}
    pngs = [sampledata.quicklook_png(folder / Path(n).name, seed=i, target_bytes=8_000)
            for i, n in enumerate(QUICKLOOKS)]
    for entry in nt.publish(pngs, name="quicklooks", topics=["quicklook"], server=proc.url,
                            token=proc.token, progress=False):
        out[entry.name] = entry
    (folder / "day-3.md").write_text("# Day 3 <b>\n\nRain *at last*.\n\n![radar](ceilometer.png)\n")
    out[POST] = nt.publish(folder / "day-3.md", name=POST, topics=["blog"], server=proc.url,
                           token=proc.token, progress=False)
    return out


@pytest.fixture
def published(server: SiteProcess, tmp_path: Path) -> dict[str, nt.Entry]:
    return publish_sample(server, tmp_path / "files")


@pytest.fixture
def browser(server: SiteProcess, published: dict[str, nt.Entry]) -> Iterator[CatalogBrowser]:
    widget = nt.browse(server=server.url, token=server.token)
    widget.interval = 1.0
    try:
        yield widget
    finally:
        widget.close()


@pytest.fixture
def shell() -> Iterator[Any]:
    """An IPython shell (as in a kernel), removed afterwards."""
    from IPython.core.interactiveshell import InteractiveShell

    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def shown_html(shell: Any, obj: object) -> str:
    """The HTML IPython shows for ``obj`` (returned, or published by a display hook)."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        data, _ = shell.display_formatter.format(obj)
    return "".join(d.get("text/html", "") for d in [data, *(o.data for o in captured.outputs)])


# -- reprs ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_entry_and_publish_result_reprs(server: SiteProcess, published: dict[str, nt.Entry]) -> None:
    html = published[SONDE]._repr_html_()
    assert SONDE in html and "RV-Meteor" in html and "sondes" in html and "processed" in html
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp;" in html
    assert f'cat[&quot;RV-Meteor&quot;][&quot;{SONDE}&quot;].to_dask()' in html
    assert f"cat = nt.open_catalog(server=&quot;{server.url}&quot;)" in html  # code that runs as shown
    assert "<details>" in html and "var(--jp-content-font-color0" in html


@pytest.mark.timeout(60)
def test_several_paths_publish_as_a_list_with_a_repr(server: SiteProcess, tmp_path: Path) -> None:
    paths = [sampledata.quicklook_png(tmp_path / f"q{i}.png", seed=i, target_bytes=5_000) for i in range(2)]
    result = nt.publish(paths, name="ql", topics=["quicklook"], server=server.url, token=server.token,
                        progress=False)
    assert isinstance(result, list) and [e.name for e in result] == ["ql/q0.png", "ql/q1.png"]
    html = result._repr_html_()  # type: ignore[union-attr]
    assert "2 entries published" in html and "ql/q0.png" in html and "ql/q1.png" in html


@pytest.mark.timeout(60)
def test_catalog_reprs(server: SiteProcess, published: dict[str, nt.Entry]) -> None:
    cat = nt.open_catalog(server=server.url)
    top = catalog_html(cat)
    assert top is not None and "1 site, 4 entries" in top
    folders = {name.split("/")[0] for name in published}
    assert all(folder in top for folder in folders) and "this site" in top  # folders or series
    site = catalog_html(cat["RV-Meteor"])
    assert site is not None and all(folder in site for folder in folders) and "<script>" not in site
    inner = catalog_html(cat["RV-Meteor"]["sondes"])
    assert inner is not None and SONDE.split("/")[1] in inner and "sondes" in inner
    source = cat["RV-Meteor"][SONDE]._repr_html_()
    assert SONDE in source and "sondes" in source and "&lt;script&gt;" in source and "<script>" not in source


@pytest.mark.timeout(60)
def test_other_catalogs_keep_intakes_display(shell: Any, tmp_path: Path) -> None:
    import intake
    from IPython.utils.capture import capture_output

    path = tmp_path / "other.yaml"
    path.write_text("sources:\n  table:\n    driver: csv\n    args: {urlpath: table.csv}\n")
    cat = intake.open_catalog(str(path))
    assert catalog_html(cat) is None
    assert register_catalog_repr()
    with capture_output() as captured:
        shell.display_formatter.format(cat)
    assert [sorted(o.data) for o in captured.outputs] == [["application/yaml", "text/plain"]]


@pytest.mark.timeout(60)
def test_ipython_shows_catalogs_and_sources_as_html(shell: Any, server: SiteProcess,
                                                    published: dict[str, nt.Entry]) -> None:
    assert register_catalog_repr()
    cat = nt.open_catalog(server=server.url)
    for obj, expected in [(cat, "4 entries"), (cat["RV-Meteor"], "sondes/"), (cat["RV-Meteor"][SONDE], SONDE),
                          (published[SONDE], SONDE)]:
        assert expected in shown_html(shell, obj), type(obj)


@pytest.mark.timeout(30)
def test_register_outside_ipython_does_nothing() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    if InteractiveShell.initialized():
        pytest.skip("an IPython shell is running in this process")
    assert register_catalog_repr() is False


@pytest.mark.timeout(30)
def test_small_helpers() -> None:
    assert human_size(999) == "999 B" and human_size(1_234_567) == "1.2 MB"
    assert open_code("BCO", "a/b.zarr", "zarr", "zarr") == 'ds = cat["BCO"]["a/b.zarr"].to_dask()'
    assert open_code("BCO", "q.png", "png") == 'data = cat["BCO"]["q.png"].read()'
    assert open_code("BCO", "blog/x", "directory", "directory").endswith(".local_path()")
    assert [state_of(3, 3, False), state_of(1, 3, False), state_of(0, 3, False), state_of(1, 3, True),
            state_of(0, 3, True)] == ["here", "partly", "remote", "arriving", "pending"]


@pytest.mark.timeout(30)
def test_markdown_is_rendered_and_safe() -> None:
    html = markdown.render(
        "# Title <i>\n\nSome *rain* and **sun**; `<b>code</b>`.\n\n- [ok](https://eurec4a.eu/?a=1&b=2)\n"
        "- [bad](javascript:alert(1))\n\n![fig](fig.png) ![gone](missing.png)\n\n```\nx < y\n```\n\n"
        "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n",
        image=lambda src: "data:image/png;base64,AAAA" if src == "fig.png" else None)
    assert "<h1>Title &lt;i&gt;</h1>" in html and "<em>rain</em>" in html and "<strong>sun</strong>" in html
    assert "<code>&lt;b&gt;code&lt;/b&gt;</code>" in html and "<pre><code>x &lt; y\n</code></pre>" in html
    assert '<a href="https://eurec4a.eu/?a=1&amp;b=2" target="_blank" rel="noopener">ok</a>' in html
    assert 'href="javascript' not in html and "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html  # raw HTML is shown as text, never run
    assert '<img src="data:image/png;base64,AAAA" alt="fig">' in html and "[gone]" in html
    assert "<ul>\n<li>" in html


# -- the browser widget ---------------------------------------------------------------


@pytest.mark.timeout(60)
def test_browser_lists_the_published_entries(browser: CatalogBrowser, server: SiteProcess,
                                             published: dict[str, nt.Entry]) -> None:
    assert {r["name"] for r in browser.rows} == set(published)
    assert browser.total == browser.matched == 4 and browser.site == "RV-Meteor"
    assert browser.topics == ["blog", "processed", "quicklook", "sondes"]
    assert browser.sites == [{"site": "RV-Meteor", **browser.sites[0]}] and browser.sites[0]["own"]
    sonde = next(r for r in browser.rows if r["name"] == SONDE)
    assert sonde["state"] == "here" and sonde["held"] == sonde["objects"] > 0
    assert sonde["description"] == NASTY and sonde["format"] == "netcdf" and not sonde["preview"]
    assert sonde["code"] == f'ds = cat["RV-Meteor"]["{SONDE}"].to_dask()'
    assert server.url in browser.setup and browser.following and not browser.error


@pytest.mark.timeout(60)
def test_topic_and_text_filters_narrow(browser: CatalogBrowser) -> None:
    browser.topic = "quicklook"
    assert sorted(r["name"] for r in browser.rows) == QUICKLOOKS and browser.matched == 2
    browser.query = "RADAR"
    assert [r["name"] for r in browser.rows] == ["quicklooks/cloud-radar.png"]
    browser.topic, browser.query = "", "alert"  # the description is searched too
    assert [r["name"] for r in browser.rows] == [SONDE]
    browser.query = ""
    assert browser.matched == browser.total == 4


@pytest.mark.timeout(60)
def test_browser_pages_through_the_entries(browser: CatalogBrowser, published: dict[str, nt.Entry]) -> None:
    browser.page_size = 3
    browser.refresh()
    first = [r["name"] for r in browser.rows]
    assert len(first) == 3 and browser.more and browser.matched == 4
    browser.page = 1
    second = [r["name"] for r in browser.rows]
    assert len(second) == 1 and not browser.more and set(first + second) == set(published)
    newest_first = sorted(published.values(), key=lambda e: (e.published, e.name), reverse=True)
    assert first + second == [e.name for e in newest_first]
    browser.page = 5  # past the last page: stays on the last
    assert browser.page == 1 and [r["name"] for r in browser.rows] == second
    browser.page = 0
    assert [r["name"] for r in browser.rows] == first
    browser.page = 1
    browser.topic = "quicklook"  # new filters start at the first page
    assert browser.page == 0 and sorted(r["name"] for r in browser.rows) == QUICKLOOKS and not browser.more


@pytest.mark.timeout(60)
def test_browser_filters_what_it_read_when_the_server_is_gone(tmp_path: Path) -> None:
    proc = start(tmp_path / "sites", "RV-Meteor")
    try:
        publish_sample(proc, tmp_path / "files")
        widget = nt.browse(server=proc.url, token=proc.token)
    finally:
        proc.stop()
    try:
        widget.stop()
        widget.topic = "quicklook"
        assert sorted(r["name"] for r in widget.rows) == QUICKLOOKS and widget.matched == 2
        assert widget.total == 4 and "filtering the 4 entries read last" in widget.error
        widget.query = "RADAR"
        assert [r["name"] for r in widget.rows] == ["quicklooks/cloud-radar.png"]
    finally:
        widget.close()


@pytest.mark.timeout(60)
def test_browser_refreshes_when_an_entry_arrives(browser: CatalogBrowser, server: SiteProcess,
                                                 tmp_path: Path) -> None:
    browser.topic = "quicklook"
    path = sampledata.quicklook_png(tmp_path / "new.png", seed=9, target_bytes=5_000)
    nt.publish(path, name="quicklooks/new.png", topics=["quicklook"], server=server.url,
               token=server.token, progress=False)
    wait_for(lambda: "quicklooks/new.png" in {r["name"] for r in browser.rows}, 15, "the new entry")
    assert browser.total == 5 and browser.matched == 3 and browser.rows[0]["name"] == "quicklooks/new.png"
    browser.stop()
    assert not browser.following and not browser._thread.is_alive()


@pytest.mark.timeout(60)
def test_preview_of_image_and_markdown(browser: CatalogBrowser, server: SiteProcess,
                                       tmp_path: Path) -> None:
    post = sampledata.blog_markdown(tmp_path / "post", seed=4, images=1, image_bytes=5_000)
    nt.publish(post, name="blog/day-4", topics=["blog"], server=server.url, token=server.token,
               progress=False)
    folder = browser.show_preview("RV-Meteor", "blog/day-4")
    assert folder["kind"] == "markdown" and "<h1>EUREC4A campaign blog" in folder["html"]
    figure = base64.b64encode((post / "figure-1.png").read_bytes()).decode()
    assert f'<img src="data:image/png;base64,{figure}"' in folder["html"]
    shown = browser.show_preview("RV-Meteor", QUICKLOOKS[0])
    assert shown["kind"] == "image" and shown["src"].startswith("data:image/png;base64,")
    assert base64.b64decode(shown["src"].split(",", 1)[1]) == (tmp_path / "files" / "ceilometer.png").read_bytes()
    browser._on_message(browser, {"action": "preview", "site": "RV-Meteor", "name": POST}, [])
    assert browser.preview["kind"] == "markdown" and browser.preview["name"] == POST
    html = browser.preview["html"]
    assert "<h1>Day 3 &lt;b&gt;</h1>" in html and "<em>at last</em>" in html
    assert '<img src="data:image/png;base64,' not in html  # the image is not beside the post
    assert browser.show_preview("RV-Meteor", SONDE)["kind"] == "error"
    assert "no preview for netcdf" in browser.preview["message"]


@pytest.mark.timeout(60)
def test_versions_of_an_entry(browser: CatalogBrowser, server: SiteProcess, tmp_path: Path) -> None:
    again = sampledata.quicklook_png(tmp_path / "again.png", seed=11)
    nt.publish(again, name=QUICKLOOKS[0], server=server.url, token=server.token, progress=False)
    browser._on_message(browser, {"action": "versions", "site": "RV-Meteor", "name": QUICKLOOKS[0]}, [])
    shown = browser.preview
    assert shown["kind"] == "versions" and len(shown["versions"]) == 2
    newest, first = shown["versions"]
    assert newest["replaces"] == first["seq"] and first["replaced_by"] == newest["seq"]
    assert newest["replaced_by"] is None
    assert newest["code"] == f"cat['RV-Meteor'][{QUICKLOOKS[0]!r}].at({newest['seq']})"
    assert browser.show_versions("RV-Meteor", "never/published.png")["kind"] == "error"


@pytest.mark.timeout(60)
def test_browser_with_a_read_token(tmp_path: Path) -> None:
    proc = start(tmp_path / "sites", "RV-Meteor", args=["--read-token"])
    try:
        publish_sample(proc, tmp_path / "files")
        with pytest.raises(Unauthorized):
            nt.browse(server=proc.url)
        widget = nt.browse(server=proc.url, token=proc.token)
        try:
            assert widget.total == 4
            assert widget.show_preview("RV-Meteor", QUICKLOOKS[1])["kind"] == "image"
        finally:
            widget.close()
    finally:
        proc.stop()


@pytest.mark.timeout(60)
def test_browser_on_a_local_store(tmp_path: Path) -> None:
    store = SiteStore.init(tmp_path / "BCO", "BCO")
    png = sampledata.quicklook_png(tmp_path / "q.png", seed=1, target_bytes=5_000)
    nt.publish(png, name="quicklooks/q.png", topics=["quicklook"], store=store.path, progress=False)
    widget = nt.browse(store=store.path)
    try:
        assert [(r["name"], r["state"]) for r in widget.rows] == [("quicklooks/q.png", "here")]
        assert widget.show_preview("BCO", "quicklooks/q.png")["kind"] == "image"
        with pytest.raises(BadInput, match="site server"):
            widget.prefetch(topics=["quicklook"])
        widget._on_message(widget, {"action": "prefetch", "topics": ["quicklook"]}, [])
        assert widget.message.startswith("prefetch failed")
        nt.publish(png, name="quicklooks/again.png", topics=["quicklook"], store=store.path, progress=False)
        wait_for(lambda: widget.total == 2, 15, "the new entry in the local store")
    finally:
        widget.close()


@pytest.mark.timeout(120)
def test_prefetch_from_the_browser_over_a_link(tmp_path: Path) -> None:
    fast = LinkProfile(down=4_000_000, up=2_000_000, delay=0.02)
    with Campaign(tmp_path / "sites", "OPS", {"RV-Meteor": Remote(fast)}) as campaign:
        campaign.wait_connected()
        ship, ops = campaign.sites["RV-Meteor"], campaign.hub
        publish_sample(ship, tmp_path / "files")
        widget = nt.browse(server=ops.url, token=ops.token)
        widget.interval = 1.0
        try:
            wait_for(lambda: widget.total == 4, 30, "the ship's entries at OPS")
            states = {r["name"]: r["state"] for r in widget.rows}
            assert set(states.values()) == {"remote"}, states
            widget._on_message(widget, {"action": "prefetch", "topics": ["quicklook"]}, [])
            assert widget.message.startswith("prefetching quicklook")
            assert [r["what"] for r in widget.rules] == ["topic quicklook"]
            wait_for(lambda: all(r["state"] == "here" for r in widget.rows if "quicklook" in r["topics"]),
                     30, "the quicklooks at OPS")
            wait_for(lambda: widget.rules[0]["complete"] == 2, 15, "the rule's progress")
            states = {r["name"]: r["state"] for r in widget.rows}
            assert states[SONDE] == "remote" and states[POST] == "remote"
            widget._on_message(widget, {"action": "prefetch", "names": [f"RV-Meteor/{SONDE}"]}, [])
            wait_for(lambda: next(r for r in widget.rows if r["name"] == SONDE)["state"] == "here", 30,
                     "the sounding at OPS")
            assert [link["connected"] for link in widget.links] == [True]
        finally:
            widget.close()
