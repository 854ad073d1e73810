"""YouTube240: videos captured at 240 fps and uploaded to YouTube as slow motion, crawled with yt-dlp.

YouTube serves at most 60 fps, so a file's frame rate cannot tell a 240 fps capture from ordinary
footage. A candidate therefore counts only when its capture rate is *declared* (``sources.csv``:
url, capture_fps, note) or *stated* in its title or description (``youtube240.evidence``, e.g.
"shot at 240fps"); without either it is rejected "capture rate unknown", before any download. The
frames are then checked for what the upload may have done to them (repeated frames, shot cuts).

Candidates come from ``sources.csv`` first, then from videos accepted by earlier searches (so a
re-run keeps the same data set), then from the ``youtube240.search`` queries, until
``youtube240.target`` videos are accepted. Every clip is test data (the paper trains on Adobe240).
yt-dlp's download archive and the manifest make re-runs idempotent: a candidate decided before is
not fetched again, not even its metadata.

One video must not be scored twice under two names: a candidate whose URL is an earlier one's once
normalised (:func:`~alabench.sources.download.canonical_url`: ``/./``, ``%7E``, ``:80``, a fragment, a
``utm_`` tag) is refused before any request; one whose download has the same sha256 as an earlier
candidate's (``?copy=1``, a mirror) is refused before extraction; both rows name the two candidates.
``sha256.json`` beside the manifest keeps each download's hash, so a later run decides the same
without fetching anything again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import yt_dlp
from yt_dlp.networking.exceptions import HTTPError

from alabench.config import Params
from alabench.frames import atomic_write_text
from alabench.layout import MANIFEST
from alabench.progress import progress
from alabench.sources import SourceError
from alabench.sources.download import canonical_url, sha256_of
from alabench.sources.extract import Batch, fingerprint, make_row
from alabench.sources.manifest import Row
from alabench.sources.video import Extraction, Result, Video, safe_name

log = logging.getLogger(__name__)

SOURCES_CSV = "sources.csv"
SOURCES_COLUMNS = ("url", "capture_fps", "note")
DIGESTS = "sha256.json"  # beside the manifest: {candidate URL: sha256 of its download}


@dataclass(frozen=True)
class Candidate:
    url: str
    source: str  # sources.csv, or the search query that found it
    capture_fps: float | None = None  # declared in sources.csv


def read_sources(path: Path) -> list[Candidate]:
    """Rows of ``sources.csv`` (lines starting with ``#`` are comments)."""
    try:
        lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    except FileNotFoundError:
        raise SourceError(f"{path}: not found; restore it from git, or create it with the header "
                          f"{','.join(SOURCES_COLUMNS)}") from None
    reader = csv.DictReader(lines)
    if tuple(reader.fieldnames or ()) != SOURCES_COLUMNS:
        raise SourceError(f"{path}: the header must be {','.join(SOURCES_COLUMNS)}, found {reader.fieldnames}")
    out = []
    for row in reader:
        url, fps = (row["url"] or "").strip(), (row["capture_fps"] or "").strip()
        if not url:
            continue
        try:
            out.append(Candidate(url, SOURCES_CSV, float(fps) if fps else None))
        except ValueError:
            raise SourceError(f"{path}: capture_fps {fps!r} of {url} is not a number; write e.g. 240, or "
                              "leave it empty to rely on the title or description") from None
    return out


def stated_capture_fps(info: dict[str, Any], pattern: str) -> tuple[float, str] | None:
    """The highest frame rate that the title or description states, and which of the two said it."""
    best: tuple[float, str] | None = None
    for field in ("title", "description"):
        for match in re.finditer(pattern, info.get(field) or ""):
            fps = float(match.group(1))
            if best is None or fps > best[0]:
                best = (fps, field)
    return best


class _YtLogger:
    """yt-dlp's messages into logging; its errors become manifest rows, so they are only debug here."""

    def debug(self, msg: str) -> None:
        log.debug("%s", msg)

    info = debug
    error = debug

    def warning(self, msg: str) -> None:
        log.warning("%s", msg)


class _Progress:
    """A progress bar per file that yt-dlp downloads."""

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}

    def __call__(self, status: dict[str, Any]) -> None:
        name = Path(status.get("filename") or "video").name
        bar = self.bars.get(name)
        if bar is None:
            bar = self.bars[name] = progress(unit="B", unit_scale=True, desc=name, leave=False)
        bar.total = status.get("total_bytes") or status.get("total_bytes_estimate") or bar.total
        bar.update((status.get("downloaded_bytes") or 0) - bar.n)
        if status.get("status") in ("finished", "error"):
            self.bars.pop(name).close()


def _permanent(err: yt_dlp.utils.DownloadError) -> bool:
    """A client error (404, 403, private or removed video) is not worth a retry; the rest may pass."""
    cause = err.exc_info[1] if err.exc_info else None
    if isinstance(cause, HTTPError):
        return 400 <= cause.status < 500 and cause.status not in (408, 429)
    return isinstance(cause, yt_dlp.utils.ExtractorError) and cause.expected


def _message(err: Exception) -> str:
    return re.sub(r"^ERROR: ", "", str(err)).strip()


class Crawler:
    """yt-dlp as a library: metadata, searches and downloads, with retries and a download archive.

    Metadata comes from an instance without the archive: with it, yt-dlp skips an archived video's
    format selection and so cannot name the file it kept.
    """

    def __init__(self, params: Params, raw: Path) -> None:
        p, net = params.youtube240, params.network
        fmt = f"[height>=?{p.min_height}][height<=?{p.max_height}]"
        self.net = net
        self.archive = raw / "archive.txt"
        self.options: dict[str, Any] = {
            "format": f"bestvideo{fmt}/best{fmt}",  # video only where the site offers it (YouTube does)
            "outtmpl": str(raw / "videos" / "%(extractor)s-%(id)s.%(ext)s"),
            "download_archive": str(self.archive),
            "ffmpeg_location": imageio_ffmpeg.get_ffmpeg_exe(),
            "noplaylist": True, "extract_flat": "in_playlist", "updatetime": False,
            "retries": net.retries, "fragment_retries": net.retries, "socket_timeout": net.timeout_s,
            "retry_sleep_functions": {"http": self._wait, "fragment": self._wait},
            "quiet": True, "noprogress": True, "logger": _YtLogger(), "progress_hooks": [_Progress()],
        }
        self.ydl = yt_dlp.YoutubeDL(self.options)
        self.meta = yt_dlp.YoutubeDL({k: v for k, v in self.options.items() if k != "download_archive"})

    def _wait(self, attempt: int) -> float:
        return self.net.backoff_s * 2**attempt

    def close(self) -> None:
        self.ydl.close()
        self.meta.close()

    def _retry(self, what: str, call: Callable[[], Any]) -> Any:
        for attempt in range(self.net.retries + 1):
            try:
                return call()
            except yt_dlp.utils.DownloadError as err:
                if _permanent(err) or attempt == self.net.retries:
                    raise
                log.warning("%s: %s; retry %d of %d in %.0f s", what, _message(err), attempt + 1,
                            self.net.retries, self._wait(attempt))
                time.sleep(self._wait(attempt))
        raise AssertionError("unreachable")

    def info(self, url: str) -> dict[str, Any]:
        return self._retry(url, lambda: self.meta.extract_info(url, download=False))

    def search(self, query: str) -> list[str]:
        """URLs of a search's results (no metadata fetched for each yet)."""
        result = self._retry(query, lambda: self.meta.extract_info(query, download=False, process=False))
        entries = (result.get("entries") or []) if result else []
        return [u for e in entries if (u := (e or {}).get("webpage_url") or (e or {}).get("url"))]

    def download(self, info: dict[str, Any]) -> Path:
        """The downloaded file; fetched again if the archive lists it but the file was deleted."""
        path = Path(self.meta.prepare_filename(info))
        archive_id = f"{info['extractor_key'].lower()} {info['id']}"
        if not path.exists() and self.archive.exists() and archive_id in self.archive.read_text().splitlines():
            kept = [line for line in self.archive.read_text().splitlines() if line != archive_id]
            self.archive.write_text("".join(f"{line}\n" for line in kept))
            self.ydl.close()
            self.ydl = yt_dlp.YoutubeDL(self.options)  # it read the archive when it started
        self._retry(info.get("webpage_url") or path.name, lambda: self.ydl.process_ie_result(info, download=True))
        if not path.exists():
            raise SourceError(f"yt-dlp reported no error but wrote no {path}")
        return path


def _candidates(params: Params, folder: Path, old: dict[str, Row], crawler: Crawler) -> Iterator[Candidate]:
    """sources.csv, then earlier search results that were accepted, then new search results."""
    yield from read_sources(folder / SOURCES_CSV)
    queries = params.youtube240.search
    yield from (Candidate(r["id"], r["source"]) for r in old.values() if r["status"] == "ok" and r["source"] in queries)
    for query in queries:
        try:
            urls = crawler.search(query)
        except yt_dlp.utils.DownloadError as err:
            log.warning("search %r failed: %s", query, _message(err))
            continue
        log.info("search %r: %d results", query, len(urls))
        yield from (Candidate(url, query) for url in urls)


def video_id(info: dict[str, Any], url: str) -> str:
    """yt-dlp's id, made unique per candidate where it is not: the generic extractor names a video
    after its file, so .../a/normal.mp4 and .../b/normal.mp4 would share one id, one file, one
    archive entry and one clip name; their id gets the URL's hash. A site's own ids (YouTube's)
    are kept: two URLs with one such id are one video."""
    if info.get("extractor_key", "").lower() == "generic":
        return f"{info['id']}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"
    return str(info["id"])


def _fetch(c: Candidate, params: Params, crawler: Crawler) -> Video | Result:
    """Metadata, capture-rate evidence, download: a Video to extract, or why not (a Result)."""
    p = params.youtube240
    try:
        info = crawler.info(c.url)
    except yt_dlp.utils.DownloadError as err:
        return Result("failed", _message(err))
    info["id"] = video_id(info, c.url)
    if c.capture_fps is not None:
        capture, where = c.capture_fps, SOURCES_CSV
    elif stated := stated_capture_fps(info, p.evidence):
        capture, where = stated
    else:
        return Result("rejected", "capture rate unknown: neither sources.csv nor the title or description states "
                                  "one (youtube240.evidence)")
    if capture < p.min_fps:
        return Result("rejected", f"capture rate {capture:g} fps ({where}) is below youtube240.min_fps {p.min_fps:g}",
                      capture_fps=capture, capture_fps_from=where)
    heights = [f["height"] for f in info.get("formats") or [] if f.get("height") and f.get("vcodec") != "none"]
    if heights and max(heights) < p.min_height:
        return Result("rejected", f"at most {max(heights)}p, below youtube240.min_height {p.min_height}",
                      capture_fps=capture, capture_fps_from=where)
    if (info.get("duration") or 0) > p.max_duration_s:
        return Result("rejected", f"{info['duration']:.0f} s is longer than youtube240.max_duration_s "
                                  f"{p.max_duration_s:g}", capture_fps=capture, capture_fps_from=where)
    try:
        path = crawler.download(info)
    except (yt_dlp.utils.DownloadError, SourceError) as err:
        return Result("failed", _message(err), capture_fps=capture, capture_fps_from=where)
    name = safe_name(f"{info.get('extractor_key', 'video')}-{info['id']}".lower())
    return Video(c.source, c.url, path, name, "test", capture, where)


def read_digests(path: Path) -> dict[str, str]:
    """``sha256.json``: the hash of each candidate's download, by URL ({} if none or unreadable: the
    downloads are then hashed again, after a metadata request each)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        log.warning("%s: not JSON; every accepted candidate is hashed again", path)
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _duplicate(c: Candidate, what: str, first: Candidate, why: str) -> Result:
    """The refusal of a candidate that is an earlier one under another name; it names both."""
    reason = f"duplicate: {c.url} ({c.source}) is the same {what} as {first.url} ({first.source}), an earlier " \
             f"candidate: {why}"
    log.warning("refused: %s", reason)
    return Result("rejected", reason)


def build(params: Params, folder: Path, raw: Path, sharp: Path) -> None:
    """Crawl until ``youtube240.target`` candidates are accepted (or the candidates run out)."""
    p = params.youtube240
    cfg = Extraction.from_params(params, p.min_fps, reject=True, min_height=p.min_height)
    manifest = raw / MANIFEST
    videos: dict[str, str] = {}  # clip name prefix -> the candidate that has it (one video, one row)
    urls: dict[str, Candidate] = {}  # canonical URL -> the first candidate with it
    files: dict[str, Candidate] = {}  # sha256 of a download -> the first candidate that downloaded it
    digests = read_digests(raw / DIGESTS)
    with closing(Crawler(params, raw)) as crawler, Batch(sharp, manifest, cfg, params.video.workers) as batch:
        for c in _candidates(params, folder, batch.old, crawler):
            while batch.pending and batch.ok + len(batch.pending) >= p.target:
                batch.collect(block=True)
            if batch.ok >= p.target:
                break
            if c.url in batch.rows or any(r for r in batch.pending.values() if r[0].id == c.url):
                continue
            # A duplicate's row has no key: it is decided anew each run (from the URL and sha256.json, no
            # request), so it is accepted once the candidate it duplicates is gone.
            canonical = canonical_url(c.url)
            if (first := urls.setdefault(canonical, c)) is not c:
                same = _duplicate(c, "URL", first, f"both are {canonical} once normalised")
                batch.record(make_row(c.source, c.url, "test", "", same))
                continue
            known = digests.get(c.url)
            if known is not None and (first := files.setdefault(known, c)) is not c:
                batch.record(make_row(c.source, c.url, "test", "", _duplicate(c, "file", first, f"sha256 {known}")))
                continue
            # A decided candidate is never fetched again (not even its metadata), so the key hashes the
            # candidate (URL, declared rate) and the settings, not the downloaded file; an accepted one
            # whose download has no hash on record yet is fetched (not downloaded again) to hash it.
            key = fingerprint(cfg, p.evidence, p.max_height, p.max_duration_s, c.url, c.capture_fps)
            if (row := batch.reusable(c.url, key)) is not None and (known or row["status"] != "ok"):
                batch.record({**row, "source": c.source})
                videos.update((clip.rsplit("-", 1)[0], c.url) for clip in row["clips"].split())
                continue
            fetched = _fetch(c, params, crawler)
            if isinstance(fetched, Video) and videos.setdefault(fetched.name, c.url) != c.url:
                fetched = Result("rejected", f"the same video as {videos[fetched.name]}, an earlier candidate",
                                 capture_fps=fetched.capture_fps, capture_fps_from=fetched.capture_fps_from)
            if isinstance(fetched, Video):
                digest = digests[c.url] = sha256_of(fetched.path)
                atomic_write_text(raw / DIGESTS, json.dumps(digests, indent=1, sort_keys=True) + "\n")
                if (first := files.setdefault(digest, c)) is not c:
                    videos.pop(fetched.name)
                    fetched = _duplicate(c, "file", first, f"sha256 {digest}")
                    key = ""
            if isinstance(fetched, Video):
                batch.submit(fetched, key)
            else:
                batch.record(make_row(c.source, c.url, "test", key, fetched))
        rows = batch.finish()
    ok = sum(r["status"] == "ok" for r in rows)
    failed = [r for r in rows if r["status"] == "failed"]
    for r in failed:
        log.warning("failed: %s: %s", r["id"], r["reason"])
    if ok == 0:
        raise SourceError(f"no YouTube video accepted out of {len(rows)} candidates (see {manifest}); add URLs of "
                          f"240 fps captures to {folder / SOURCES_CSV} or check youtube240.search")
    if ok < p.target:
        log.warning("youtube240: %d accepted of the %d wanted; add URLs to %s", ok, p.target, folder / SOURCES_CSV)
    log.info("youtube240: %d accepted, %d rejected, %d failed (see %s; failed ones are retried on the next run)",
             ok, sum(r["status"] == "rejected" for r in rows), len(failed), manifest)
