"""Adobe240 (Su et al., CVPR 2017): the original high-frame-rate videos, their standard split, frames.

The zip holds the videos under ``.../original_high_fps_videos/``. The test split is the 8 videos
that Super SloMo, BIN and ALANET share (``test.txt`` in the folder ``fetch.datasets.adobe240``);
every other video of the zip is train. The first complete download writes, beside that list,
``lock.json`` (the zip's size and sha256) and ``train.txt`` (the zip's other videos), both to be
committed; later runs check the zip against both, so the split cannot drift. Both are written only
after the zip passed every check (safe entries, the lists, every member read against its CRC-32,
the test videos extracted), so a refused zip is never pinned.

A zip is accepted or refused whole. Its entries, lists and members' CRCs are checked before
anything is extracted; the frames are then extracted into a working copy of ``data/sharp/adobe240``
that replaces it only when every check has passed. A refused zip (a corrupt member, a test video
at 30 fps, a video that cannot be decoded) leaves nothing: not a clip, not an extracted video.
A killed run leaves its working copy, and the next run goes on from it.

These are real 240 fps files, so the container frame rate is the capture rate; one below
``adobe240.min_fps`` is rejected. A test video that is missing, rejected or unreadable stops the
stage: the standard split must be complete for Table 2 to mean anything.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from alabench.config import Params
from alabench.errors import UserError
from alabench.frames import atomic_write_text
from alabench.layout import MANIFEST
from alabench.sources import SourceError
from alabench.sources.download import check_archive, check_members, extract_member, fetch_locked
from alabench.sources.extract import Batch, fingerprint, staged
from alabench.sources.manifest import Row
from alabench.sources.video import Extraction, Video, safe_name

log = logging.getLogger(__name__)

VIDEO_FOLDER = "original_high_fps_videos"
VIDEO_SUFFIXES = {".mov", ".mp4", ".m4v"}
TEST_LIST = "test.txt"
TRAIN_LIST = "train.txt"
LOCK = "lock.json"


def read_list(path: Path) -> list[str]:
    """Names, one a line; blank lines and ``#`` comments skipped."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise SourceError(f"{path}: list not found; restore it from git (`git checkout {path}`)") from None
    return [s for line in lines if (s := line.split("#", 1)[0].strip())]


def zip_videos(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The videos of the zip by file name (macOS resource forks and other folders ignored)."""
    videos: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if (info.is_dir() or path.parent.name != VIDEO_FOLDER or "__MACOSX" in path.parts
                or path.name.startswith(".") or path.suffix.lower() not in VIDEO_SUFFIXES):
            continue
        if path.name in videos:
            raise SourceError(f"the zip holds two videos named {path.name}: {videos[path.name].filename} and "
                              f"{info.filename}; delete the zip and download it again")
        videos[path.name] = info
    return videos


def assign_splits(names: list[str], folder: Path) -> tuple[dict[str, str], list[str] | None]:
    """``{video: "train" | "test"}`` from ``test.txt`` and, once written, ``train.txt``; with the
    train list to write (None when ``train.txt`` exists).

    A listed video that the zip lacks, or a video of the zip that no list names, is an error
    naming it. Without ``train.txt``, train is every video not in the test list; the caller writes
    that list for the user to commit once the zip has passed every check.
    """
    test = read_list(folder / TEST_LIST)
    lists = {"test": test, "train": read_list(folder / TRAIN_LIST) if (folder / TRAIN_LIST).exists() else None}
    for split, listed in lists.items():
        missing = [n for n in listed or [] if n not in names]
        if missing:
            raise SourceError(f"{folder / f'{split}.txt'} names {', '.join(missing)}, but the zip has no such video "
                              f"under {VIDEO_FOLDER}/ (names are case-sensitive): fix the list, or delete the zip "
                              "and download it again")
    if lists["train"] is None:
        return {n: "test" if n in test else "train" for n in names}, [n for n in names if n not in test]
    unlisted = [n for n in names if n not in test and n not in lists["train"]]
    if unlisted:
        raise SourceError(f"the zip holds {', '.join(unlisted)}, named in neither {folder / TEST_LIST} nor "
                          f"{folder / TRAIN_LIST}: add each to one list")
    return {n: "test" if n in test else "train" for n in names if n in test or n in lists["train"]}, None


def refuse_unusable(rows: list[Row], manifest: Path, zip_path: Path) -> None:
    """Refuse the zip if a video could not be decoded, or a test video is not usable (the standard
    8-video test split must be complete for Table 2 to mean anything)."""
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines = "\n".join(f"  {r['id']}: {r['reason']}" for r in failed)
        raise SourceError(f"{len(failed)} of {len(rows)} videos of {zip_path} failed (see {manifest}):\n{lines}\n"
                          f"Nothing was extracted: delete {zip_path} and run the stage again to download it again")
    bad_test = [r for r in rows if r["split"] == "test" and r["status"] != "ok"]
    if bad_test:
        names = "; ".join(f"{r['id']}: {r['reason']}" for r in bad_test)
        raise SourceError(f"test video(s) not usable: {names}. The standard 8-video test split must be complete "
                          f"(see {manifest}); nothing was extracted: check adobe240.min_fps and the download")


def build(params: Params, folder: Path, raw: Path, sharp: Path) -> None:
    """Download (or resume, or verify) the zip, unzip what is needed, extract every video's frames."""
    url = params.adobe240.url
    zip_path = raw / (PurePosixPath(urlparse(url).path).name or "adobe240.zip")
    read_list(folder / TEST_LIST)  # a missing list stops the stage before any download
    new_lock = fetch_locked(url, zip_path, folder / LOCK, params.network)
    cfg = Extraction.from_params(params, params.adobe240.min_fps, reject=False)
    manifest = raw / MANIFEST
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise SourceError(f"{zip_path}: not a readable zip ({err}); delete it and run again to download it "
                          "again") from None
    videos = raw / "videos"
    kept = set(videos.iterdir()) if videos.is_dir() else set()
    with archive:
        check_archive(archive, zip_path)
        members = zip_videos(archive)
        if not members:
            raise SourceError(f"{zip_path}: no videos under a folder named {VIDEO_FOLDER}/; is this the "
                              f"original high-fps videos zip? Check adobe240.url")
        splits, new_train = assign_splits(sorted(members), folder)
        check_members(archive, zip_path)
        try:
            with staged(sharp) as work, Batch(work, manifest, cfg, params.video.workers) as batch:
                for name, info in sorted(members.items()):
                    video = Video(zip_path.name, name, videos / name, safe_name(Path(name).stem), splits[name])
                    # the CRC-32 of the member's data (check_members compared the two), not only its entry's
                    key = fingerprint(cfg, video, info.CRC, info.file_size)
                    if batch.reusable(name, key) is None:
                        extract_member(archive, info, videos)
                    batch.submit(video, key)
                rows = batch.finish()
                refuse_unusable(rows, manifest, zip_path)
        except UserError:
            for path in set(videos.iterdir()) - kept if videos.is_dir() else ():
                path.unlink()  # the refused zip's videos, as extracted by this run
            if videos.is_dir() and not any(videos.iterdir()):
                videos.rmdir()
            raise
    # Only a zip that passed every check above is pinned (lock.json, train.txt).
    if new_lock is not None:
        new_lock.write(folder / LOCK)
        log.info("recorded %s (%d bytes, sha256 %s) in %s: commit it", zip_path.name, new_lock.size,
                 new_lock.sha256, folder / LOCK)
    if new_train is not None:
        atomic_write_text(folder / TRAIN_LIST, "# Adobe240 train split: every video of the zip (lock.json) that is "
                          "not in test.txt.\n" + "".join(f"{n}\n" for n in new_train))
        log.info("wrote %s (%d videos): commit it", folder / TRAIN_LIST, len(new_train))
    counts = {s: sum(r["split"] == s and r["status"] == "ok" for r in rows) for s in ("train", "test")}
    log.info("adobe240: %d train and %d test videos extracted, %d rejected (see %s)", counts["train"],
             counts["test"], sum(r["status"] == "rejected" for r in rows), manifest)
