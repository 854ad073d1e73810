"""YouTube240 offline: yt-dlp (its generic extractor) crawls direct mp4 URLs that a server on
127.0.0.1 serves, listed in a test sources.csv and in an RSS feed standing in for a search; the
real crawl, frame checks, extraction and eq. 7 blur run on them."""

from __future__ import annotations

import csv
import hashlib
from fractions import Fraction
import shutil
from pathlib import Path

import numpy as np
import pytest

from alabench.blur import prepare_split, read_manifest
from alabench.config import parse_params
from alabench.frames import read_clip
from alabench.sources import SourceError
from alabench.sources.checks import frame_difference
from alabench.sources.download import canonical_url
from alabench.sources import youtube240
from alabench.sources.youtube240 import build, stated_capture_fps
from conftest import tiny_params
from footage import encode, encode_timed, pendulum, shot
from httpserver import serve

SMOOTH = (0.5, 1.5)  # output px per 240 fps frame


def feed(base: str, names: list[str]) -> bytes:
    items = "".join(f"<item><title>{n}</title><link>{base}/{n}</link></item>" for n in names)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>results</title><link>{base}/</link>'
            f"{items}</channel></rss>").encode()


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    """One crawl over every kind of candidate; the server stays up for the re-run tests."""
    tmp = tmp_path_factory.mktemp("yt")
    shots = {"a": shot(0, 36, SMOOTH), "b": shot(1, 36, SMOOTH, split="train")}
    videos = {
        "declared30.mp4": (shot(2, 40, SMOOTH), 30),  # a 240 fps capture in a 30 fps file
        "repeated60.mp4": (np.repeat(shot(3, 24, (1.0, 2.0)), 2, axis=0), 60),  # every frame twice
        "cut.mp4": (np.concatenate([shots["a"], shots["b"]]), 240),  # a hard cut after frame 35
        "nofps.mp4": (shot(4, 40, SMOOTH), 240),  # nothing says how it was captured
        "slowmo_240fps.mp4": (shot(5, 40, SMOOTH), 240),  # its title states the rate
        "found_240fps.mp4": (shot(6, 40, SMOOTH), 240),  # search results
        "found_plain.mp4": (shot(7, 40, SMOOTH), 240),
    }
    with serve() as server:
        for name, (frames, fps) in videos.items():
            server.add(f"/{name}", encode(tmp / "enc" / name, frames, fps).read_bytes(), "video/mp4")
        server.add("/results.rss", feed(server.base, ["found_240fps.mp4", "found_plain.mp4"]), "application/rss+xml")
        folder = tmp / "lists"
        folder.mkdir()
        declared = {"declared30.mp4": "240", "repeated60.mp4": "240", "cut.mp4": "240", "missing.mp4": "240"}
        rows = [f"{server.url('/' + n)},{declared.get(n, '')},test" for n in
                ["declared30.mp4", "repeated60.mp4", "cut.mp4", "nofps.mp4", "slowmo_240fps.mp4", "missing.mp4"]]
        (folder / "sources.csv").write_text("# a comment line\nurl,capture_fps,note\n" + "\n".join(rows) + "\n")
        p = tiny_params()
        p["fetch"]["datasets"] = {"youtube240": str(folder)}
        p["youtube240"].update(search=[server.url("/results.rss")], min_height=36)
        p["video"].update(width=64, height=36, workers=2)
        p["network"].update(retries=1, backoff_s=0.0, timeout_s=10.0)
        params = parse_params(p)
        raw, sharp = tmp / "raw", tmp / "sharp"
        build(params, folder, raw, sharp)
        yield {"server": server, "first_run": list(server.log), "params": params, "folder": folder, "raw": raw, "sharp": sharp, "shots": shots,
               "tmp": tmp}


def manifest(raw: Path) -> dict[str, dict[str, str]]:
    with open(raw / "manifest.csv", newline="") as fh:
        return {Path(row["id"]).name: row for row in csv.DictReader(fh)}


def tag(name: str, crawl) -> str:
    """The hash of a candidate's URL that makes a generic-extractor id unique."""
    return hashlib.sha256(crawl["server"].url(f"/{name}").encode()).hexdigest()[:8]


def test_capture_rate_comes_from_the_list_or_the_title_never_the_container(crawl):
    rows = manifest(crawl["raw"])
    declared = rows["declared30.mp4"]
    assert (declared["status"], declared["capture_fps"], declared["capture_fps_from"], declared["container_fps"]) == \
        ("ok", "240", "sources.csv", "30")
    assert declared["clips"] == f"generic-declared30-{tag('declared30.mp4', crawl)}-000" and declared["frames"] == "40"
    titled = rows["slowmo_240fps.mp4"]
    assert (titled["status"], titled["capture_fps"], titled["capture_fps_from"]) == ("ok", "240", "title")
    for name, source in (("nofps.mp4", "sources.csv"), ("found_plain.mp4", crawl["server"].url("/results.rss"))):
        assert rows[name]["status"] == "rejected" and rows[name]["source"] == source
        assert rows[name]["reason"] == ("capture rate unknown: neither sources.csv nor the title or description "
                                        "states one (youtube240.evidence)")
    assert rows["found_240fps.mp4"]["status"] == "ok" and rows["found_240fps.mp4"]["capture_fps_from"] == "title"
    downloaded = sorted(p.name for p in (crawl["raw"] / "videos").iterdir())
    assert not [n for n in downloaded if n.startswith(("generic-nofps", "generic-found_plain"))]
    assert f"generic declared30-{tag('declared30.mp4', crawl)}" in (crawl["raw"] / "archive.txt").read_text().splitlines()


def test_repeated_frames_are_rejected(crawl):
    row = manifest(crawl["raw"])["repeated60.mp4"]
    assert row["status"] == "rejected" and row["clips"] == ""
    assert row["reason"].startswith("repeated frames: ")
    assert row["reason"].endswith("of consecutive frames are (near-)identical, above checks.max_repeated 10%: the "
                                  "stream was frame-rate converted")


def test_a_404_is_failed(crawl):
    row = manifest(crawl["raw"])["missing.mp4"]
    assert row["status"] == "failed" and "HTTP Error 404" in row["reason"]
    assert [s.path for s in crawl["first_run"]].count("/missing.mp4") == 1  # a client error is not retried


def test_a_hard_cut_makes_two_clips_and_no_blurred_input_crosses_it(crawl, tmp_path):
    row = manifest(crawl["raw"])["cut.mp4"]
    cut = f"generic-cut-{tag('cut.mp4', crawl)}"
    assert row["status"] == "ok" and row["clips"] == f"{cut}-000 {cut}-001"
    assert row["reason"] == "1 shot cut(s), before frame(s) 36"
    shots = crawl["shots"]

    def side(frame: np.ndarray) -> str:
        return min(shots, key=lambda s: min(frame_difference(frame, f) for f in shots[s]))

    test_dir = crawl["sharp"] / "test"
    sides = {clip: {side(f) for f in read_clip(test_dir / clip)} for clip in row["clips"].split()}
    assert sides == {f"{cut}-000": {"a"}, f"{cut}-001": {"b"}}
    counts = prepare_split(test_dir, tmp_path / "prepared", crawl["params"].blur, root=crawl["tmp"])
    rows = read_manifest(tmp_path / "prepared/all_blurry/manifest.csv")
    assert counts["all_blurry"] == len(rows) > 0
    tau = crawl["params"].blur.window // 2
    for r in rows:
        if r["clip"].startswith("generic-cut"):
            frames = read_clip(test_dir / r["clip"])
            window = frames[int(r["center"]) - tau:int(r["center"]) + tau + 1]
            assert len(window) == 2 * tau + 1 and {side(f) for f in window} == sides[r["clip"]]


def test_a_second_run_downloads_nothing_new(crawl):
    server, log_before = crawl["server"], len(crawl["server"].log)
    before = (crawl["raw"] / "manifest.csv").read_text()
    clips = {p: p.stat().st_mtime_ns for p in crawl["sharp"].glob("test/*/00000.png")}
    build(crawl["params"], crawl["folder"], crawl["raw"], crawl["sharp"])
    asked = [s.path for s in server.log[log_before:]]
    assert sorted(set(asked)) == ["/missing.mp4", "/results.rss"]  # the failed one is retried; the search rerun
    assert (crawl["raw"] / "manifest.csv").read_text() == before
    assert {p: p.stat().st_mtime_ns for p in crawl["sharp"].glob("test/*/00000.png")} == clips


def test_the_download_archive_skips_kept_files_and_fetches_deleted_ones_again(crawl, tmp_path):
    raw, sharp = tmp_path / "raw", tmp_path / "sharp"
    shutil.copytree(crawl["raw"], raw)
    shutil.copytree(crawl["sharp"], sharp)
    (raw / "manifest.csv").unlink()  # as if a run was killed after its downloads
    (raw / f"videos/generic-cut-{tag('cut.mp4', crawl)}.mp4").unlink()  # and one download was deleted since
    server, log_before = crawl["server"], len(crawl["server"].log)
    build(crawl["params"], crawl["folder"], raw, sharp)
    asked = [s.path for s in server.log[log_before:]]
    assert asked.count("/declared30.mp4") == 1  # metadata only: the archive and the file say it is there
    assert asked.count("/cut.mp4") == 2  # metadata, then the download again
    assert manifest(raw)["cut.mp4"]["status"] == "ok" and (raw / f"videos/generic-cut-{tag('cut.mp4', crawl)}.mp4").is_file()


def test_the_crawl_stops_at_the_target(crawl, tmp_path):
    p = crawl["params"]
    params = parse_params({**tiny_params(), "fetch": {"datasets": {"youtube240": str(crawl["folder"])}},
                           "youtube240": {**p.youtube240.__dict__, "search": [], "target": 1},
                           "video": p.video.__dict__, "network": p.network.__dict__})
    build(params, crawl["folder"], tmp_path / "raw", tmp_path / "sharp")
    assert list(manifest(tmp_path / "raw")) == ["declared30.mp4"]


def test_nothing_accepted_is_an_error(crawl, tmp_path):
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "sources.csv").write_text(f"url,capture_fps,note\n{crawl['server'].url('/nofps.mp4')},,\n")
    p = crawl["params"]
    params = parse_params({**tiny_params(), "fetch": {"datasets": {"youtube240": str(folder)}},
                           "youtube240": {**p.youtube240.__dict__, "search": []},
                           "video": p.video.__dict__, "network": p.network.__dict__})
    with pytest.raises(SourceError, match=r"^no YouTube video accepted out of 1 candidates \(see .*manifest.csv\); "
                                          r"add URLs of 240 fps captures to .*sources.csv"):
        build(params, folder, tmp_path / "raw", tmp_path / "sharp")


@pytest.mark.parametrize("info, expected", [
    ({"title": "Water balloon at 240 FPS", "description": "played back at 30fps"}, (240.0, "title")),
    ({"title": "Slow motion", "description": "Shot on iPhone, 240 frames per second"}, (240.0, "description")),
    ({"title": "Super slow motion 960fps", "description": None}, (960.0, "title")),
    ({"title": "60fps gameplay"}, None),  # two digits: a playback rate, not a capture rate
    ({"title": "Slow motion", "description": "no rate here"}, None),
])
def test_evidence_pattern(info, expected):
    pattern = parse_params(tiny_params()).youtube240.evidence
    assert stated_capture_fps(info, pattern) == expected


def test_files_of_one_name_on_two_paths_are_two_videos_with_their_own_keys(tmp_path, caplog):
    """Two candidates ending in normal.mp4 (different videos) and a 404 of the same name: each gets
    its own id, download, clip and manifest key. A variable-frame-rate file is rejected."""
    with serve() as server:
        pts = [0, *np.cumsum([1 if i % 2 == 0 else 3 for i in range(35)]).tolist()]  # 1/480 s, 1/160 s, ...
        vfr = encode_timed(tmp_path / "vfr.mp4", pendulum(2, 36), pts, Fraction(1, 480))
        server.add("/d/vfr.mp4", vfr.read_bytes(), "video/mp4")
        for i, folder in enumerate(("a", "b")):
            server.add(f"/{folder}/normal.mp4", encode(tmp_path / f"{folder}.mp4", pendulum(i, 36), 240).read_bytes(),
                       "video/mp4")
        urls = [server.url(f"/{folder}/normal.mp4") for folder in ("a", "b", "c")]
        lists = tmp_path / "lists"
        lists.mkdir()
        (lists / "sources.csv").write_text("url,capture_fps,note\n" + "".join(f"{u},240,\n" for u in urls)
                                           + f"{server.url('/d/vfr.mp4')},240,\n")
        p = tiny_params()
        p["fetch"]["datasets"] = {"youtube240": str(lists)}
        p["youtube240"].update(search=[], min_height=36)
        p["video"].update(width=64, height=36, workers=1)
        p["network"].update(retries=0, backoff_s=0.0, timeout_s=10.0)
        raw, sharp = tmp_path / "raw", tmp_path / "sharp"
        with caplog.at_level("INFO"):
            build(parse_params(p), lists, raw, sharp)
        assert [s.path for s in server.log if s.status == 200].count("/b/normal.mp4") >= 1  # downloaded, not skipped
    with open(raw / "manifest.csv", newline="") as fh:
        rows = {row["id"]: row for row in csv.DictReader(fh)}
    a, b, c = (rows[u] for u in urls)
    assert (a["status"], b["status"], c["status"]) == ("ok", "ok", "failed")
    assert a["clips"] != b["clips"] and len({a["key"], b["key"], c["key"]}) == 3
    first = [read_clip(sharp / "test" / row["clips"])[0] for row in (a, b)]
    assert frame_difference(*first) > 10  # two different videos, not one twice
    assert rows[server.url("/d/vfr.mp4")]["reason"].startswith("irregular frame timing: a frame interval deviates 5")
    assert "youtube240: 2 accepted, 1 rejected, 1 failed" in caplog.text


def test_two_urls_of_one_video_give_one_clip_set_and_a_duplicate_row(tmp_path, monkeypatch):
    """As two links to one YouTube video (one site id): the second is rejected as the same video,
    in the run that fetches both and in a later run that reuses the first."""
    monkeypatch.setattr(youtube240, "video_id", lambda info, url: str(info["id"]))  # ids as a site's own
    with serve() as server:
        data = encode(tmp_path / "same.mp4", pendulum(4, 36), 240).read_bytes()
        urls = [server.add(f"/{folder}/same.mp4", data, "video/mp4") for folder in ("a", "b")]
        lists = tmp_path / "lists"
        lists.mkdir()
        p = tiny_params()
        p["fetch"]["datasets"] = {"youtube240": str(lists)}
        p["youtube240"].update(search=[], min_height=36)
        p["video"].update(width=64, height=36, workers=1)
        p["network"].update(retries=0, backoff_s=0.0, timeout_s=10.0)
        raw, sharp = tmp_path / "raw", tmp_path / "sharp"
        for listed in (urls, urls[:1], urls):  # both; the first alone; both again (the first reused)
            (lists / "sources.csv").write_text("url,capture_fps,note\n" + "".join(f"{u},240,\n" for u in listed))
            build(parse_params(p), lists, raw, sharp)
            with open(raw / "manifest.csv", newline="") as fh:
                rows = {row["id"]: row for row in csv.DictReader(fh)}
            assert rows[urls[0]]["status"] == "ok" and rows[urls[0]]["clips"] == "generic-same-000"
            if len(listed) == 2:
                assert rows[urls[1]]["status"] == "rejected" and rows[urls[1]]["clips"] == ""
                assert rows[urls[1]]["reason"] == f"the same video as {urls[0]}, an earlier candidate"
            assert sorted(c.name for c in (sharp / "test").iterdir()) == ["generic-same-000"]


def test_one_file_under_other_urls_is_refused_naming_both_and_lands_once(tmp_path):
    """Other spellings of one URL are refused before any request; the same bytes under another URL
    (``?copy=1``, a mirror) after the download, by their sha256. Only one clip set lands, all test;
    a re-run decides the same without a request; with the first candidate gone, the next one counts."""
    with serve() as server:
        data = encode(tmp_path / "same.mp4", pendulum(5, 36), 240).read_bytes()
        first, mirror = server.add("/a/same.mp4", data, "video/mp4"), server.add("/b/mirror.mp4", data, "video/mp4")
        other = server.add("/c/other.mp4", encode(tmp_path / "other.mp4", pendulum(6, 36), 240).read_bytes(),
                           "video/mp4")
        host, port = server.base.removeprefix("http://").split(":")
        spellings = [f"HTTP://{host}:{port}/a/./same.mp4", f"http://{host}:{port}/x/../a/%73ame.mp4#t=1",
                     f"{first}?utm_source=feed&utm_medium=rss"]
        copy = f"{first}?copy=1"
        lists = tmp_path / "lists"
        lists.mkdir()
        p = tiny_params()
        p["fetch"]["datasets"] = {"youtube240": str(lists)}
        p["youtube240"].update(search=[], min_height=36)
        p["video"].update(width=64, height=36, workers=1)
        p["network"].update(retries=0, backoff_s=0.0, timeout_s=10.0)
        raw, sharp = tmp_path / "raw", tmp_path / "sharp"

        def crawl(listed: list[str]) -> dict[str, dict[str, str]]:
            (lists / "sources.csv").write_text("url,capture_fps,note\n" + "".join(f"{u},240,\n" for u in listed))
            build(parse_params(p), lists, raw, sharp)
            with open(raw / "manifest.csv", newline="") as fh:
                return {row["id"]: row for row in csv.DictReader(fh)}

        rows = crawl([first, *spellings, copy, mirror, other])
        assert [rows[u]["status"] for u in (first, other)] == ["ok", "ok"]
        for url in spellings:
            assert rows[url]["status"] == "rejected" and rows[url]["clips"] == ""
            assert rows[url]["reason"] == (f"duplicate: {url} (sources.csv) is the same URL as {first} (sources.csv), "
                                           f"an earlier candidate: both are {first} once normalised")
        assert not [s for s in server.log if s.path.startswith(("/x/", "/a/./")) or "utm_" in s.path]  # never asked
        digest = hashlib.sha256(data).hexdigest()
        for url in (copy, mirror):
            assert rows[url]["status"] == "rejected" and rows[url]["clips"] == ""
            assert rows[url]["reason"] == (f"duplicate: {url} (sources.csv) is the same file as {first} "
                                           f"(sources.csv), an earlier candidate: sha256 {digest}")
        clips = {rows[first]["clips"], rows[other]["clips"]}
        assert [p.name for p in sharp.iterdir()] == ["test"]  # never train, never twice in test
        assert {c.name for c in (sharp / "test").iterdir()} == clips

        asked = len(server.log)
        assert crawl([first, *spellings, copy, mirror, other]) == rows
        assert len(server.log) == asked  # every decision, duplicates included, taken from disk

        rows = crawl([*spellings, copy, mirror, other])  # the first candidate gone: its first spelling counts
        assert rows[spellings[0]]["status"] == "ok" and rows[copy]["reason"].startswith(
            f"duplicate: {copy} (sources.csv) is the same file as {spellings[0]} (sources.csv)")
        assert rows[spellings[1]]["reason"].endswith(f"is the same URL as {spellings[0]} (sources.csv), an earlier "
                                                     f"candidate: both are {first} once normalised")
        assert {c.name for c in (sharp / "test").iterdir()} == {rows[spellings[0]]["clips"], rows[other]["clips"]}


@pytest.mark.parametrize("url, canonical", [
    ("HTTP://Example.COM:80/a/./b/../v.mp4#t=3", "http://example.com/a/v.mp4"),
    ("https://example.com:443/%7Euser/v%2emp4", "https://example.com/~user/v.mp4"),
    ("https://example.com:8443/a%2fb/v.mp4", "https://example.com:8443/a%2Fb/v.mp4"),  # %2F is not a slash
    ("http://example.com/../v.mp4?utm_source=rss&id=7&fbclid=x", "http://example.com/v.mp4?id=7"),
    ("http://example.com/v.mp4?copy=1", "http://example.com/v.mp4?copy=1"),  # may select a file: the sha256 decides
    ("http://example.com/cut.mp4?start=10", "http://example.com/cut.mp4?start=10"),
    ("http://example.com", "http://example.com/"),
])
def test_canonical_url_drops_only_what_cannot_change_the_file(url, canonical):
    assert canonical_url(url) == canonical
