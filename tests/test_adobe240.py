"""Adobe240 offline: a server on 127.0.0.1 serves a small zip with the real folder layout holding
tiny videos encoded by PyAV (240 fps and 30 fps containers); the real code downloads, verifies,
unzips, splits and extracts it, and meets every fault the issue lists."""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import stat
import sys
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml

from alabench.blur import read_manifest
from alabench.config import parse_params
from alabench.sources import SourceError, adobe240
from alabench.sources.adobe240 import build, read_list
from alabench.sources.download import extract_member
from conftest import REPO, git_repo, run, tiny_params
from footage import encode, encode_timed, pendulum, shot
from httpserver import serve

TEST_NAMES = read_list(REPO / "sources/adobe240/test.txt")
PREFIX = "DeepVideoDeblurring_Dataset_Original_High_FPS_Videos/original_high_fps_videos/"
ZIP = "/DeepVideoDeblurring_Dataset_Original_High_FPS_Videos.zip"


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, bytes]:
    """The 8 test videos and one train video at 240 fps, and a train video whose container says 30 fps."""
    work = tmp_path_factory.mktemp("videos")
    out = {name: encode(work / f"{i}.mp4", shot(i, 30), 240).read_bytes()
           for i, name in enumerate([*TEST_NAMES, "IMG_0001.mov"])}
    out["IMG_0002.mov"] = encode(work / "30fps.mp4", shot(9, 30), 30).read_bytes()
    return out


def make_zip(videos: dict[str, bytes], extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for name, data in videos.items():
            archive.writestr(PREFIX + name, data)
        archive.writestr("__MACOSX/" + PREFIX + "._IMG_0001.mov", b"resource fork")
        for info, data in extra:
            archive.writestr(info, data)
    return buf.getvalue()


def params_dict(folder: Path, url: str) -> dict:
    p = tiny_params()
    p["fetch"]["datasets"] = {"adobe240": str(folder)}
    p["adobe240"]["url"] = url
    p["video"].update(width=48, height=32, workers=2)
    p["network"].update(retries=0, backoff_s=0.0, timeout_s=10.0)
    return p


def project(tmp_path: Path, url: str, **network: float) -> tuple:
    """(params, lists folder, raw, sharp) in ``tmp_path``, the lists folder a copy of the committed one."""
    folder = tmp_path / "lists"
    folder.mkdir(exist_ok=True)
    shutil.copy(REPO / "sources/adobe240/test.txt", folder / "test.txt")
    p = params_dict(folder, url)
    p["network"].update(network)
    return parse_params(p), folder, tmp_path / "raw", tmp_path / "sharp"


def failed_build(tmp_path: Path, data: bytes | None, content_type: str = "application/zip",
                 train: str | None = None) -> tuple[str, str, Path, Path, Path]:
    """Serve ``data`` as the zip (None: nothing there), build, and return the error's message with
    (url, lists folder, raw, sharp)."""
    with serve() as server:
        url = server.add(ZIP, data, content_type) if data is not None else server.url(ZIP)
        params, folder, raw, sharp = project(tmp_path, url)
        if train is not None:
            (folder / "train.txt").write_text(train)
        with pytest.raises(SourceError) as info:
            build(params, folder, raw, sharp)
    return str(info.value), url, folder, raw, sharp


def manifest(raw: Path) -> dict[str, dict[str, str]]:
    with open(raw / "manifest.csv", newline="") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


@pytest.mark.pipeline
def test_dvc_repro_downloads_extracts_splits_and_blurs(videos, tmp_path):
    """The complete run, as a user runs it: adobe240 in fetch.datasets and blur.datasets, then
    `dvc repro blur@adobe240` (the stage that fetches it runs first)."""
    with serve() as server:
        url = server.add(ZIP, make_zip(videos))
        p = params_dict(Path("sources/adobe240"), url)
        p["blur"]["datasets"] = ["synth", "adobe240"]  # synth: train.datasets needs its test split
        repo = git_repo(tmp_path / "repo", p)
        repro = [sys.executable, "-m", "dvc", "repro", "blur@adobe240"]
        assert "Running stage 'fetch@adobe240'" in run(repro, repo).stdout
        rows = manifest(repo / "data/raw/adobe240")
        assert {n for n, r in rows.items() if r["split"] == "test" and r["status"] == "ok"} == set(TEST_NAMES)
        assert rows["IMG_0001.mov"]["split"] == "train" and rows["IMG_0001.mov"]["status"] == "ok"
        assert rows["IMG_0002.mov"]["status"] == "rejected"  # the 30 fps container
        assert rows["IMG_0002.mov"]["reason"] == "capture rate 30 fps (container) is below min_fps 200"
        assert rows["IMG_0001.mov"]["container_fps"] == "240" and rows["IMG_0001.mov"]["frames"] == "30"
        assert sorted(p.name for p in (repo / "data/sharp/adobe240/train").iterdir()) == ["IMG_0001-000"]
        assert len(list((repo / "data/sharp/adobe240/test").iterdir())) == 8
        assert len(read_manifest(repo / "data/prepared/adobe240/test/all_blurry/manifest.csv")) == 8 * 3
        assert (repo / "sources/adobe240/lock.json").is_file()  # recorded at the first complete download
        assert read_list(repo / "sources/adobe240/train.txt") == ["IMG_0001.mov", "IMG_0002.mov"]
        status = run([sys.executable, "-m", "dvc", "status", "fetch@adobe240", "blur@adobe240"], repo).stdout
        assert "Data and pipelines are up to date" in status, status
        assert len(server.sent(ZIP)) == 1
        again = run(repro, repo).stdout
        assert "Running stage" not in again and len(server.sent(ZIP)) == 1


def test_dropped_connection_resumes_with_range_on_the_next_run(videos, tmp_path):
    data = make_zip(videos)
    with serve() as server:
        url = server.add(ZIP, data)
        server.fault(ZIP, "drop", len(data) // 3)
        params, folder, raw, sharp = project(tmp_path, url)
        with pytest.raises(SourceError) as info:
            build(params, folder, raw, sharp)
        part = raw / (ZIP[1:] + ".part")
        assert str(info.value) == (f"{url}: download interrupted (connection closed at byte {len(data) // 3} of "
                                   f"{len(data)}) with {len(data) // 3} bytes in {part}, which is kept: run the "
                                   "stage again to resume")
        assert part.stat().st_size == len(data) // 3 and not sharp.exists()
        build(params, folder, raw, sharp)
        first, second = server.sent(ZIP)
        assert first.range is None and second.range == f"bytes={len(data) // 3}-" and second.status == 206
        assert first.body_bytes + second.body_bytes == len(data)  # no byte fetched twice
        assert (raw / ZIP[1:]).read_bytes() == data and not part.exists()


def test_dropped_connection_is_retried_within_the_run(videos, tmp_path):
    data = make_zip(videos)
    with serve() as server:
        url = server.add(ZIP, data)
        server.fault(ZIP, "drop", 1000)
        build(*project(tmp_path, url, retries=1))
        assert [s.range for s in server.sent(ZIP)] == [None, "bytes=1000-"]


def test_checksum_mismatch_keeps_the_file_aside(videos, tmp_path):
    data = make_zip(videos)
    with serve() as server:
        url = server.add(ZIP, data)
        params, folder, raw, sharp = project(tmp_path, url)
        build(params, folder, raw, sharp)
        lock = (folder / "lock.json").read_text()
        server.add(ZIP, make_zip({**videos, "IMG_0001.mov": videos["IMG_0002.mov"]}))  # the server's file changed
        (raw / ZIP[1:]).unlink()
        with pytest.raises(SourceError) as info:
            build(params, folder, raw, sharp)
    message = str(info.value)
    aside = next(raw.glob("*.zip.mismatch-*"))
    assert message.startswith(f"{raw / ZIP[1:]}: ") and f"but {folder / 'lock.json'} records {len(data)} bytes" in message
    assert f"The file was moved to {aside} (not deleted)" in message and "delete" in message
    assert (folder / "lock.json").read_text() == lock and not (raw / ZIP[1:]).exists()


@pytest.mark.parametrize("content_type", ["text/html", "application/octet-stream"])
def test_html_page_instead_of_zip(tmp_path, content_type):
    page = b"\n<!DOCTYPE html><html><body>Moved to a new site</body></html>"
    message, url, folder, _, _ = failed_build(tmp_path, page, content_type)
    expected = ("the server answered an HTML page (Content-Type: text/html), not the file" if content_type == "text/html"
                else "the server sent an HTML page, not a zip")
    assert message.startswith(f"{url}: {expected}; it may have moved")
    assert not (folder / "lock.json").exists()


def test_http_error_is_named(tmp_path):
    message, url, *_ = failed_build(tmp_path, None)
    assert message == f"{url}: HTTP 404 Not Found; check the URL in params.yaml"


def test_no_server_is_named(tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}{ZIP}"
    with pytest.raises(SourceError) as info:
        build(*project(tmp_path, url, retries=1))
    assert str(info.value).startswith(f"{url}: download failed (cannot connect: ")
    assert str(info.value).endswith("after 2 attempt(s); check the network and the URL in params.yaml, then run the "
                                    "stage again")


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("entry, why", [
    ("../../evil.mov", "would land outside the target folder"),
    (PREFIX + "../../../../escape.mov", "would land outside the target folder"),
    ("/etc/evil.mov", "would land outside the target folder"),
    (_symlink(PREFIX + "IMG_0003.mov"), "is a symbolic link"),
])
def test_zip_slip_and_symlink_entries_are_refused(videos, tmp_path, entry, why):
    message, _, _, raw, sharp = failed_build(tmp_path, make_zip(videos, [(entry, b"/etc/passwd")]))
    name = entry.filename if isinstance(entry, zipfile.ZipInfo) else entry
    assert message == (f"{raw / ZIP[1:]}: entry {name!r} {why}; refusing to extract this archive. Delete it "
                               "and download it again from the official URL")
    assert not (raw / "videos").exists() and not sharp.exists()  # nothing extracted
    assert not list(tmp_path.parent.glob("**/evil.mov")) and not list(tmp_path.parent.glob("**/escape.mov"))


def test_a_listed_test_video_missing_from_the_zip_is_named(videos, tmp_path):
    incomplete = {n: v for n, v in videos.items() if n != "IMG_0183.MOV"}
    message, _, folder, _, _ = failed_build(tmp_path, make_zip(incomplete))
    assert message == (f"{folder / 'test.txt'} names IMG_0183.MOV, but the zip has no such video under "
                               "original_high_fps_videos/ (names are case-sensitive): fix the list, or delete the "
                               "zip and download it again")


@pytest.mark.parametrize("train, expected", [
    ("IMG_0001.mov\nIMG_0002.mov\nIMG_0099.mov\n", "train.txt names IMG_0099.mov, but the zip has no such video"),
    ("IMG_0001.mov\n", "the zip holds IMG_0002.mov, named in neither"),
])
def test_the_train_list_is_checked_against_the_zip(videos, tmp_path, train, expected):
    assert expected in failed_build(tmp_path, make_zip(videos), train=train)[0]


def nothing_extracted(raw: Path, sharp: Path) -> None:
    """What a refused zip must leave: no clip, no extracted video, no working copy."""
    assert not sharp.exists() and not (raw / "videos").exists()
    assert not [p.name for p in sharp.parent.glob(f".{sharp.name}*")]


def test_a_30fps_test_video_refuses_the_zip_and_leaves_nothing_extracted(videos, tmp_path):
    bad = dict(videos, **{"IMG_0015.mov": videos["IMG_0002.mov"]})
    message, _, folder, raw, sharp = failed_build(tmp_path, make_zip(bad))
    assert message == (f"test video(s) not usable: IMG_0015.mov: capture rate 30 fps (container) is below "
                               f"min_fps 200. The standard 8-video test split must be complete (see "
                               f"{raw / 'manifest.csv'}); nothing was extracted: check adobe240.min_fps and the "
                               "download")
    nothing_extracted(raw, sharp)  # the 7 other test clips and the train clip were extracted, then dropped
    assert not (folder / "lock.json").exists()


def test_a_video_that_cannot_be_decoded_refuses_the_zip_and_the_genuine_one_then_passes(videos, tmp_path):
    broken = dict(videos, **{"IMG_0001.mov": videos["IMG_0001.mov"][: len(videos["IMG_0001.mov"]) // 2]})
    with serve() as server:
        params, folder, raw, sharp = project(tmp_path, server.add(ZIP, make_zip(broken)))
        with pytest.raises(SourceError) as info:
            build(params, folder, raw, sharp)
        message = str(info.value)
        zip_path = raw / ZIP[1:]
        assert message.startswith(f"1 of 10 videos of {zip_path} failed (see {raw / 'manifest.csv'}):\n"
                                  f"  IMG_0001.mov: cannot decode {raw / 'videos/IMG_0001.mov'}: ")
        assert message.endswith(f"Nothing was extracted: delete {zip_path} and run the stage again to download it "
                                "again")
        nothing_extracted(raw, sharp)
        zip_path.unlink()
        assert not (folder / "lock.json").exists()  # a zip with a broken video is not pinned
        server.add(ZIP, make_zip(videos))
        build(params, folder, raw, sharp)
    assert manifest(raw)["IMG_0001.mov"]["status"] == "ok"
    assert len(list((sharp / "test").iterdir())) == 8 and (folder / "lock.json").is_file()


def corrupt(data: bytes, member: str) -> bytes:
    """The zip ``data`` with one byte of ``member``'s data flipped: its central directory, sizes and
    recorded CRC-32 unchanged."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(member)
    start = info.header_offset + 30 + len(info.orig_filename.encode()) + len(info.extra)
    out = bytearray(data)
    out[start + info.compress_size // 2] ^= 0xFF
    return bytes(out)


def test_a_corrupt_member_is_refused_by_name_before_anything_is_extracted(videos, tmp_path):
    member = PREFIX + TEST_NAMES[3]
    message, url, folder, raw, sharp = failed_build(tmp_path, corrupt(make_zip(videos), member))
    zip_path = raw / ZIP[1:]
    assert message == (f"{zip_path}: member {member!r} is corrupt (Bad CRC-32 for file {member!r}); nothing was "
                       f"extracted. Delete {zip_path} and run the stage again to download it again")
    nothing_extracted(raw, sharp)
    assert not (folder / "lock.json").exists() and not (folder / "train.txt").exists()


def test_the_stage_names_a_corrupt_member_in_one_line(videos, tmp_path):
    with serve() as server:
        url = server.add(ZIP, corrupt(make_zip(videos), PREFIX + "IMG_0001.mov"))
        work = tmp_path / "w"
        shutil.copytree(REPO / "stages", work / "stages")
        (work / "lists").mkdir()
        shutil.copy(REPO / "sources/adobe240/test.txt", work / "lists/test.txt")
        (work / "params.yaml").write_text(yaml.safe_dump(params_dict(Path("lists"), url)))
        result = run([sys.executable, "-m", "stages.fetch", "--dataset", "adobe240"], work, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "BadZipFile" not in result.stderr
    assert f"member '{PREFIX}IMG_0001.mov' is corrupt (Bad CRC-32" in result.stderr
    assert not (work / "data/sharp/adobe240").exists() and not (work / "data/raw/adobe240/videos").exists()


def test_reuse_reads_the_members_data_not_only_the_zips_directory(videos, tmp_path):
    """The videos of a first zip were extracted; a second zip with the same directory (names, sizes,
    CRCs) but a corrupt member must not pass because its rows and files are reused unread."""
    data = make_zip(videos)
    with serve() as server:
        params, folder, raw, sharp = project(tmp_path, server.add(ZIP, data))
        build(params, folder, raw, sharp)
        done = {p: p.stat().st_mtime_ns for p in sharp.glob("*/*/00000.png")}
        (folder / "lock.json").unlink()  # as for a new version of the zip: record the next download
        (raw / ZIP[1:]).unlink()
        server.add(ZIP, corrupt(data, PREFIX + "IMG_0001.mov"))
        with pytest.raises(SourceError, match=r"member '.*IMG_0001.mov' is corrupt \(Bad CRC-32"):
            build(params, folder, raw, sharp)
        assert not (folder / "lock.json").exists()
        assert {p: p.stat().st_mtime_ns for p in sharp.glob("*/*/00000.png")} == done  # the accepted clips kept


def test_an_extracted_video_of_the_same_size_but_other_bytes_is_extracted_again(videos, tmp_path):
    data = make_zip(videos)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(PREFIX + "IMG_0001.mov")
        dest = extract_member(archive, info, tmp_path)
        dest.write_bytes(bytes(b ^ 1 for b in dest.read_bytes()))  # restored from elsewhere: same size, other bytes
        assert extract_member(archive, info, tmp_path).read_bytes() == videos["IMG_0001.mov"]


def test_a_killed_run_goes_on_from_its_working_copy(videos, tmp_path, monkeypatch):
    """Killed after every video was extracted, before the checks: nothing is in place, and the next
    run moves the finished clips into place without extracting them again."""
    def killed(*args):
        raise KeyboardInterrupt

    with serve() as server:
        params, folder, raw, sharp = project(tmp_path, server.add(ZIP, make_zip(videos)))
        monkeypatch.setattr(adobe240, "refuse_unusable", killed)
        with pytest.raises(KeyboardInterrupt):
            build(params, folder, raw, sharp)
        monkeypatch.undo()
        partial = sharp.with_name(f".{sharp.name}.partial")
        assert not sharp.exists() and len(list((partial / "test").iterdir())) == 8
        done = {p.relative_to(partial): p.stat().st_mtime_ns for p in partial.glob("*/*/00000.png")}
        build(params, folder, raw, sharp)
    assert {p.relative_to(sharp): p.stat().st_mtime_ns for p in sharp.glob("*/*/00000.png")} == done
    assert not partial.exists() and (folder / "lock.json").is_file()


@pytest.mark.pipeline
def test_stage_prints_one_line_error_without_traceback(tmp_path):
    with serve() as server:
        url = server.add(ZIP, b"<html>moved</html>", "text/html")
        p = params_dict(Path("lists"), url)
        work = tmp_path / "w"
        shutil.copytree(REPO / "stages", work / "stages")
        (work / "lists").mkdir()
        shutil.copy(REPO / "sources/adobe240/test.txt", work / "lists/test.txt")
        (work / "params.yaml").write_text(yaml.safe_dump(p))
        result = run([sys.executable, "-m", "stages.fetch", "--dataset", "adobe240"], work, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: {url}: the server answered an HTML page (Content-Type: text/html), not the file" in result.stderr


@pytest.fixture(scope="module")
def swinging(tmp_path_factory) -> dict[str, bytes]:
    """The 8 test videos and a train video, pendulum footage (not the synth renderer's) at 240 fps."""
    work = tmp_path_factory.mktemp("swinging")
    return {name: encode(work / f"{i}.mp4", pendulum(i, 30), 240).read_bytes()
            for i, name in enumerate([*TEST_NAMES, "IMG_0001.mov"])}


@pytest.mark.parametrize("bad, train", [
    ("symlink", None), ("missing test video", None), ("extra video", "IMG_0001.mov\n"), ("30 fps test video", None),
])
def test_a_refused_zip_is_not_pinned_and_the_genuine_one_then_passes(swinging, tmp_path, bad, train):
    """Neither lock.json nor train.txt records a zip that failed a check, so after "delete the zip
    and download it again" the genuine zip is accepted, not moved aside as a mismatch."""
    broken = {"symlink": lambda v: make_zip(v, [(_symlink(PREFIX + "IMG_0003.mov"), b"/etc/passwd")]),
              "missing test video": lambda v: make_zip({n: d for n, d in v.items() if n != TEST_NAMES[0]}),
              "extra video": lambda v: make_zip({**v, "IMG_0009.mov": v["IMG_0001.mov"]}),
              "30 fps test video": lambda v: make_zip({**v, TEST_NAMES[1]: encode(tmp_path / "30.mp4", pendulum(1, 30),
                                                                                   30).read_bytes()})}[bad]
    with serve() as server:
        params, folder, raw, sharp = project(tmp_path, server.add(ZIP, broken(swinging)))
        if train is not None:
            (folder / "train.txt").write_text(train)
        with pytest.raises(SourceError):
            build(params, folder, raw, sharp)
        assert not (folder / "lock.json").exists()
        assert (folder / "train.txt").exists() == (train is not None)
        (raw / ZIP[1:]).unlink()  # as the message says: delete the zip, download it again
        server.add(ZIP, make_zip(swinging))
        build(params, folder, raw, sharp)
    assert json.loads((folder / "lock.json").read_text())["size"] == len(make_zip(swinging))
    assert not list(raw.glob("*.mismatch-*"))
    assert {n for n, r in manifest(raw).items() if r["status"] == "ok"} == set(swinging)


def test_a_variable_frame_rate_test_video_is_kept_but_flagged(swinging, tmp_path):
    """The standard split stays complete; the manifest says which video has irregular timing."""
    pts = [0, *np.cumsum([1 if i % 2 == 0 else 3 for i in range(29)]).tolist()]  # 1/480 s, 1/160 s, ...
    vfr = encode_timed(tmp_path / "vfr.mp4", pendulum(2, 30), pts, Fraction(1, 480)).read_bytes()
    with serve() as server:
        params, folder, raw, sharp = project(tmp_path, server.add(ZIP, make_zip({**swinging, TEST_NAMES[2]: vfr})))
        build(params, folder, raw, sharp)
    rows = manifest(raw)
    assert all(r["status"] == "ok" for r in rows.values())
    assert [n for n, r in rows.items() if "irregular_timing" in r["flags"].split()] == [TEST_NAMES[2]]
    assert "irregular frame timing: a frame interval deviates 51% from the mean" in rows[TEST_NAMES[2]]["reason"]
