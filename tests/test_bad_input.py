"""Bad names and bad input: a clear error that says what is wrong, and nothing changed
(no commit, no new object)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.entries import Entry, check_name, check_site, check_topics
from eurec4a_nt.errors import BadInput, NotFound, NTError
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(60)

SITE = "RV-Meteor"


@pytest.fixture
def published(store: SiteStore, tmp_path: Path) -> tuple[SiteStore, Path]:
    """A store with one entry, and a file ready to publish."""
    first = sd.raw_file(tmp_path / "first.bin", size=300_000, seed=1)
    nt.publish(first, "raw/first.bin", store=store.path)
    return store, sd.raw_file(tmp_path / "new.bin", size=2_000_000, seed=2)


def unchanged(store: SiteStore, action: Callable[[], Any], error: type[Exception],
              match: str) -> NTError:
    """Run ``action``; check it raises ``error`` matching ``match`` and changes nothing."""
    seq, held = store.log(SITE).seq, set(store.objects.ids())
    log_bytes = (store.path / "logs" / f"{SITE}.jsonl").read_bytes()
    with pytest.raises(error, match=match) as info:
        action()
    assert isinstance(info.value, NTError)
    assert "\n" not in str(info.value)
    assert SiteStore(store.path).log(SITE).seq == seq
    assert set(store.objects.ids()) == held
    assert (store.path / "logs" / f"{SITE}.jsonl").read_bytes() == log_bytes
    return info.value


BAD_NAMES = [
    ("..", "not '.' or '..'"),
    ("raw/../etc/passwd", "not '.' or '..'"),
    ("./raw", "not '.' or '..'"),
    ("raw//x.nc", "non-empty"),
    ("/raw/x.nc", "non-empty"),
    ("raw//x/", "non-empty"),  # "raw/" alone names a folder to publish into
    ("raw/x y.nc", "letters, digits"),
    ("raw/caf\u00e9.nc", "letters, digits"),
    ("raw\\x.nc", "letters, digits"),
    ("raw/x.nc\n", "letters, digits"),
    ("a" * 513, "at most 512"),
    ("", "name is required"),
]


@pytest.mark.parametrize(("name", "says"), BAD_NAMES)
def test_bad_entry_names(published: tuple[SiteStore, Path], name: str, says: str) -> None:
    store, path = published
    unchanged(store, lambda: nt.publish(path, name, store=store.path), BadInput, says)


def test_longest_name_is_accepted(store: SiteStore, tmp_path: Path) -> None:
    name = "/".join(["a" * 99] * 5) + "/" + "b" * 12
    assert len(name) == 512
    assert check_name(name) == name
    (tmp_path / "f").write_bytes(b"x")
    assert nt.publish(tmp_path / "f", name, store=store.path).name == name


@pytest.mark.parametrize("topics", [["Sondes"], ["with space"], [""], ["sondes", 5],
                                    ["sonde_s"], None, {"sondes": 1}])
def test_bad_topics(published: tuple[SiteStore, Path], topics: Any) -> None:
    store, path = published
    unchanged(store, lambda: nt.publish(path, "raw/new.bin", topics=topics, store=store.path),
              BadInput, "topic")


def test_topics_are_sorted_and_deduplicated() -> None:
    assert check_topics(["sondes", "quicklook", "sondes"]) == ("quicklook", "sondes")
    assert check_topics("raw") == ("raw",)


@pytest.mark.parametrize("site", ["", "-RV", ".hidden", "RV Meteor", "RV/Meteor", "a" * 65,
                                  "RV-M\u00e9t\u00e9or", "../x", None])
def test_bad_site_names(tmp_path: Path, site: Any) -> None:
    with pytest.raises(BadInput, match="bad site name"):
        nt.init_site(site, store=tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_good_site_names() -> None:
    for site in ("RV-Meteor", "BCO", "P3", "a" * 64, "halo.2020_v1"):
        assert check_site(site) == site


def test_a_store_belongs_to_one_site(store: SiteStore) -> None:
    key = (store.path / "keys" / f"{SITE}.key").read_bytes()
    with pytest.raises(BadInput, match="already belongs to site RV-Meteor"):
        nt.init_site("RV-Merian", store=store.path)
    assert nt.init_site(SITE, store=store.path).name == SITE  # reopening is fine
    assert (store.path / "keys" / f"{SITE}.key").read_bytes() == key
    assert not (store.path / "keys" / "RV-Merian.key").exists()


@pytest.mark.parametrize("key", ["topics", "site", "size", "published", "root", "name"])
def test_reserved_metadata_keys(published: tuple[SiteStore, Path], key: str) -> None:
    store, path = published
    unchanged(store, lambda: nt.publish(path, "raw/new.bin", metadata={key: "x"}, store=store.path),
              BadInput, f"metadata key '{key}' is reserved")


@pytest.mark.parametrize("metadata", [["a", "list"], "text", {"when": datetime.datetime(2020, 2, 1)},
                                      {"f": object()}])
def test_metadata_must_be_a_json_object(published: tuple[SiteStore, Path], metadata: Any) -> None:
    store, path = published
    unchanged(store, lambda: nt.publish(path, "raw/new.bin", metadata=metadata, store=store.path),
              BadInput, "metadata")


@pytest.mark.parametrize("obj", [42, b"raw bytes", {"a": 1}, 3.5])
def test_wrong_object_type(published: tuple[SiteStore, Path], obj: Any) -> None:
    store, _ = published
    unchanged(store, lambda: nt.publish(obj, "raw/new.bin", store=store.path), BadInput,
              "cannot publish|give a path|xarray.Dataset")


def test_dataset_needs_a_name(published: tuple[SiteStore, Path]) -> None:
    store, _ = published
    unchanged(store, lambda: nt.publish(sd.timeseries(seed=1, hours=1), store=store.path),
              BadInput, "give a name=")


def test_nothing_to_publish(published: tuple[SiteStore, Path]) -> None:
    store, _ = published
    unchanged(store, lambda: nt.publish([], "raw/none", store=store.path), BadInput, "nothing")


def test_missing_path(published: tuple[SiteStore, Path], tmp_path: Path) -> None:
    store, _ = published
    unchanged(store, lambda: nt.publish(tmp_path / "absent.nc", "raw/absent.nc", store=store.path),
              NotFound, "no such file or folder")


def test_one_missing_path_among_several_stores_nothing(published: tuple[SiteStore, Path],
                                                       tmp_path: Path) -> None:
    store, path = published
    unchanged(store, lambda: nt.publish([path, tmp_path / "absent.nc"], "raw/batch", store=store.path),
              NotFound, "absent.nc")


def test_publish_to_a_store_that_does_not_exist(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(NotFound, match="eurec4a-nt init"):
        nt.publish(tmp_path / "f", "f", store=tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_remove_of_an_unknown_entry(published: tuple[SiteStore, Path]) -> None:
    store, _ = published
    unchanged(store, lambda: nt.remove("raw/absent.bin", store=store.path), NotFound, "no entry")
    unchanged(store, lambda: nt.remove(["raw/first.bin", "raw/absent.bin"], store=store.path),
              NotFound, "no entry")
    unchanged(store, lambda: nt.remove("../x", store=store.path), BadInput, "bad entry name")


def test_bad_object_ids() -> None:
    for text in ["", "0" * 63, "0" * 65, "G" * 64, "A" * 64, None, 5]:
        with pytest.raises(BadInput, match="not an object id"):
            ObjectId.parse(text)
    assert ObjectId.parse("0" * 64) == "0" * 64


def test_bad_entries_are_refused() -> None:
    root = ObjectId.of(b"x")
    with pytest.raises(BadInput, match="bad entry kind"):
        Entry("a", "folder", root, 1, "binary")
    with pytest.raises(BadInput, match="bad entry name"):
        Entry("a/../b", "file", root, 1, "binary")
    with pytest.raises(BadInput, match="metadata"):
        Entry("a", "file", root, 1, "binary", metadata=[])  # type: ignore[arg-type]


def test_a_bad_file_name_among_several_stores_nothing(published: tuple[SiteStore, Path],
                                                      tmp_path: Path) -> None:
    store, path = published
    odd = tmp_path / "with space.nc"
    odd.write_bytes(b"CDF\x01 not really")
    unchanged(store, lambda: nt.publish([path, odd], "raw/batch", store=store.path),
              BadInput, "bad entry name 'raw/batch/with space.nc'")


def test_datasets_are_published_one_at_a_time(published: tuple[SiteStore, Path]) -> None:
    store, path = published
    ds = sd.timeseries(seed=1, hours=1)
    unchanged(store, lambda: nt.publish([path, ds], "raw/batch", store=store.path),
              BadInput, "one at a time")


def test_open_catalog_of_a_server_nobody_answers_says_so(tmp_path: Path) -> None:
    """The list of sites is read when the catalog is opened: a wrong URL fails there."""
    from eurec4a_nt.errors import Unreachable

    with pytest.raises(Unreachable, match=r"127\.0\.0\.1:9"):
        nt.open_catalog(server="http://127.0.0.1:9", token=None)


@pytest.mark.parametrize(("at", "says"), [("1" * 13, "at most 12 digits"), ("-1", "bad time"),
                                          ("yesterday", "bad time"), (True, "give a seq")])
def test_bad_points_in_a_log(at: Any, says: str) -> None:
    from eurec4a_nt.versions import parse_at

    with pytest.raises(BadInput, match=says):
        parse_at(at)

