"""Resumable HTTP download of one large file, its checksum lock, canonical URLs, and safe zip extraction.

Why so careful: the Adobe240 zip is several gigabytes on a university web server. A dropped
connection or a killed run must not cost the bytes already fetched (``<file>.part`` grows with HTTP
Range requests and becomes ``<file>`` by an atomic rename only when complete); a server that has
moved the file and answers an HTML page must not be mistaken for the data; a file that changed
since the first download must be noticed (size and sha256 in a small committed lock file); and a
zip must never write outside its target folder or create a symbolic link.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from alabench.config import NetworkParams
from alabench.frames import atomic_path, atomic_write_text
from alabench.progress import progress
from alabench.sources import SourceError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
ZIP_MAGIC = b"PK\x03\x04"
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Query keys that only say where a click came from (campaign tags, ad click ids): they never select
# a file. Any other key may (``download.php?id=7``, nginx's ``video.mp4?start=10``), so it is kept;
# a query that changes nothing (``?copy=1``) is caught by the content hash of the download instead.
TRACKING = re.compile(r"utm_[a-z_]+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|mc_eid|igshid|_ga|_gl",
                      re.IGNORECASE)


class _Interrupted(Exception):
    """The transfer stopped early; the bytes so far are in the .part file and a retry resumes."""


@dataclass(frozen=True)
class Lock:
    """What the first complete download was: checked on every later run."""

    file: str
    size: int
    sha256: str

    @classmethod
    def read(cls, path: Path) -> Lock | None:
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(str(data["file"]), int(data["size"]), str(data["sha256"]))
        except (ValueError, KeyError, TypeError) as err:
            raise SourceError(f"{path}: not a valid lock file ({err}); restore it from git, or delete it "
                              "to record the next complete download") from None

    def write(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.__dict__, indent=2) + "\n")


def canonical_url(url: str) -> str:
    """``url`` as a server sees it, so that two spellings of one address compare equal: scheme and
    host in lower case, no default port, percent-escapes of unreserved characters decoded and the
    others in upper case, ``.`` and ``..`` path segments resolved (RFC 3986, 6.2.2), no fragment
    (never sent) and no click-tracking query keys (:data:`TRACKING`). Other query keys are kept: for
    a direct link they may select the file, and dropping them could merge two different videos."""
    parts = urllib.parse.urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:  # not a port number: not a URL a server could answer, left as written
        return url.strip()
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    if parts.username is not None:
        netloc = parts.username + (f":{parts.password}" if parts.password is not None else "") + "@" + netloc
    path = _dot_segments(_escapes(parts.path)) or "/"
    pairs = [p for p in parts.query.split("&") if p and not TRACKING.fullmatch(urllib.parse.unquote(p.split("=")[0]))]
    return urllib.parse.urlunsplit((scheme, netloc, path, "&".join(_escapes(p) for p in pairs), ""))


def _escapes(text: str) -> str:
    """Characters a URL cannot hold raw percent-encoded (UTF-8), escapes of unreserved ones decoded
    (``%7E`` is ``~``, ``%2E`` a dot), the other escapes in upper case (``%2f`` is ``%2F``)."""
    text = urllib.parse.quote(text, safe="%/:@!$&'()*+,;=?-._~")
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m[1], 16)) if chr(int(m[1], 16)) in UNRESERVED
                  else f"%{m[1].upper()}", text)


def _dot_segments(path: str) -> str:
    """RFC 3986's remove_dot_segments for an absolute path: ``/a/./b/../c`` is ``/a/c``."""
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/".join(out)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh, progress(total=path.stat().st_size, unit="B", unit_scale=True,
                                          desc=f"sha256 {path.name}", leave=False) as bar:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def fetch_locked(url: str, dest: Path, lock_path: Path, net: NetworkParams) -> Lock | None:
    """Make ``dest`` the complete download of ``url``, verified against ``lock_path`` if it exists.

    Downloads (or resumes) unless ``dest`` is there. With a lock, a size or sha256 mismatch moves
    ``dest`` aside (never deletes it) and raises; without one, returns the :class:`Lock` to record.
    The caller writes it only once the file has passed every one of its own checks: a lock that
    pinned a refused file would turn the genuine file away as a mismatch.
    """
    lock = Lock.read(lock_path)
    if not dest.exists():
        download(url, dest, net, expect_size=lock.size if lock else None)
    size, digest = dest.stat().st_size, sha256_of(dest)
    if lock is None:
        return Lock(dest.name, size, digest)
    if (size, digest) != (lock.size, lock.sha256):
        aside = dest.with_name(f"{dest.name}.mismatch-{digest[:12]}")
        os.replace(dest, aside)
        raise SourceError(
            f"{dest}: {size} bytes, sha256 {digest}, but {lock_path} records {lock.size} bytes, sha256 "
            f"{lock.sha256}. The file was moved to {aside} (not deleted). Run again to download a fresh "
            f"copy; if the server publishes a new version on purpose, delete {lock_path} first")
    log.info("%s matches %s", dest, lock_path)
    return None


def download(url: str, dest: Path, net: NetworkParams, expect_size: int | None = None) -> None:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming with HTTP Range after a dropped
    connection (up to ``net.retries`` times here, or in a later run); ``dest`` appears only complete."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(net.retries + 1):
        try:
            _transfer(url, part, net.timeout_s, expect_size)
            break
        except _Interrupted as err:
            have = part.stat().st_size if part.exists() else 0
            if attempt == net.retries and have:
                raise SourceError(f"{url}: download interrupted ({err}) with {have} bytes in {part}, which is "
                                  "kept: run the stage again to resume") from None
            if attempt == net.retries:
                raise SourceError(f"{url}: download failed ({err}) after {net.retries + 1} attempt(s); check the "
                                  "network and the URL in params.yaml, then run the stage again") from None
            wait = net.backoff_s * 2**attempt
            log.warning("%s: %s with %d bytes so far; resuming in %.0f s (retry %d of %d)", url, err, have,
                        wait, attempt + 1, net.retries)
            time.sleep(wait)
    os.replace(part, dest)
    log.info("downloaded %s (%d bytes)", dest, dest.stat().st_size)


def _transfer(url: str, part: Path, timeout: float, expect_size: int | None) -> None:
    """One HTTP request: append to ``part`` from where it ends; raise _Interrupted if cut short."""
    have = part.stat().st_size if part.exists() else 0
    if expect_size is not None and have == expect_size:
        return
    if expect_size is not None and have > expect_size:
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code >= 500 or err.code == 429:
            raise _Interrupted(f"HTTP {err.code} {err.reason}") from None
        raise SourceError(f"{url}: HTTP {err.code} {err.reason}; check the URL in params.yaml") from None
    except (urllib.error.URLError, OSError) as err:
        raise _Interrupted(f"cannot connect: {getattr(err, 'reason', err)}") from None
    with response:
        content_type = response.headers.get("Content-Type", "")
        if "html" in content_type.lower():
            raise SourceError(f"{url}: the server answered an HTML page (Content-Type: {content_type}), not the "
                              "file; it may have moved: open the URL in a browser and fix it in params.yaml")
        if have and response.status != 206:
            log.warning("%s: the server ignored the Range request; downloading from the start", url)
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as fh, progress(total=total, initial=have, unit="B",
                                                                unit_scale=True, desc=part.name) as bar:
            first = have == 0
            while True:
                try:
                    chunk = response.read(CHUNK)
                except OSError as err:  # reset, timeout, IncompleteRead
                    raise _Interrupted(f"connection lost: {err}") from None
                if not chunk:
                    break
                if first and not chunk.startswith(ZIP_MAGIC):
                    kind = "an HTML page" if chunk.lstrip()[:1] == b"<" else f"bytes starting {chunk[:8]!r}"
                    raise SourceError(f"{url}: the server sent {kind}, not a zip; it may have moved: open the "
                                      "URL in a browser and fix it in params.yaml")
                first = False
                fh.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Interrupted(f"connection closed at byte {size} of {total}")


def unsafe_entry(info: zipfile.ZipInfo) -> str | None:
    """Why an archive entry must not be extracted (a symlink, or a path that leaves the folder)."""
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        return "would land outside the target folder"
    return None


def check_archive(archive: zipfile.ZipFile, zip_path: Path) -> None:
    """Refuse the whole archive if any entry is unsafe: nothing is extracted from a hostile zip."""
    for info in archive.infolist():
        if reason := unsafe_entry(info):
            raise SourceError(f"{zip_path}: entry {info.filename!r} {reason}; refusing to extract this archive. "
                              "Delete it and download it again from the official URL")


def check_members(archive: zipfile.ZipFile, zip_path: Path) -> None:
    """Read every member to its end, so that zipfile compares its data with the CRC-32 that the
    central directory records: a zip is used (and pinned) only when each member's bytes are the
    ones it claims, and a key made of those CRCs then keys on the members' data. One pass over the
    zip, like its sha256; nothing is written."""
    members = [info for info in archive.infolist() if not info.is_dir()]
    with progress(total=sum(i.file_size for i in members), unit="B", unit_scale=True,
                  desc=f"check {zip_path.name}", leave=False) as bar:
        for info in members:
            # BadZipFile: a bad CRC-32 or header; zlib.error, EOFError: broken or cut compressed data;
            # RuntimeError: an encrypted member, or (NotImplementedError) an unknown compression
            try:
                with archive.open(info) as member:
                    while chunk := member.read(CHUNK):
                        bar.update(len(chunk))
            except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, ValueError) as err:
                raise SourceError(f"{zip_path}: member {info.filename!r} is corrupt ({err}); nothing was extracted. "
                                  f"Delete {zip_path} and run the stage again to download it again") from None


def crc32_of(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target_dir: Path) -> Path:
    """Extract one (checked) entry as ``target_dir/<its base name>``, atomically; skip it if a file
    with its size and CRC-32 is already there (its size alone would keep another version's bytes)."""
    dest = target_dir / PurePosixPath(info.filename).name
    if dest.is_file() and dest.stat().st_size == info.file_size and crc32_of(dest) == info.CRC:
        return dest
    with archive.open(info) as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
        shutil.copyfileobj(src, out, CHUNK)
    return dest
