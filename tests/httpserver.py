"""A file server on 127.0.0.1 for the offline download and crawl tests: HTTP Range requests, a log
of what it sent, and one-shot faults (drop the connection mid-file, answer HTML, answer an error).
Like a static file server it finds a file by its path alone: percent-escapes decoded, ``.`` and
``..`` resolved, the query ignored (``/a/./v.mp4?copy=1`` is ``/a/v.mp4``); the log keeps the
request as sent."""

from __future__ import annotations

import posixpath
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTML_PAGE = b"<!DOCTYPE html><html><head><title>Moved</title></head><body>This page has moved.</body></html>"


@dataclass(frozen=True)
class Sent:
    path: str
    range: str | None  # the request's Range header
    status: int
    body_bytes: int  # bytes of body actually written


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.faults: dict[str, list[tuple[str, int]]] = {}
        self.log: list[Sent] = []
        self.base = ""

    def add(self, path: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.files[path] = (data, content_type)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def fault(self, path: str, kind: str, value: int = 0) -> None:
        """For the next request of ``path``: ``drop`` after ``value`` bytes, ``html``, or ``status`` ``value``."""
        self.faults.setdefault(path, []).append((kind, value))

    def sent(self, path: str) -> list[Sent]:
        return [s for s in self.log if s.path == path]


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str], drop: int | None) -> None:
            self.send_response(status)
            for key, value in {"Content-Type": content_type, "Content-Length": str(len(body)), **extra}.items():
                self.send_header(key, value)
            self.end_headers()
            written = len(body) if drop is None else min(drop, len(body))
            if self.command != "HEAD":
                self.wfile.write(body[:written])
                self.wfile.flush()
            server.log.append(Sent(self.path, self.headers.get("Range"), status, written if self.command != "HEAD" else 0))
            if drop is not None:
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        def do_GET(self) -> None:
            faults = server.faults.get(self.path)
            kind, value = faults.pop(0) if faults else ("", 0)
            if kind == "html":
                return self._send(200, HTML_PAGE, "text/html; charset=utf-8", {}, None)
            file = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
            if kind == "status" or file not in server.files:
                code = value or 404
                return self._send(code, b"<html>error</html>", "text/html", {}, None)
            data, content_type = server.files[file]
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            start = int(match.group(1)) if match else 0
            if start >= len(data) and match:
                return self._send(416, b"", content_type, {"Content-Range": f"bytes */{len(data)}"}, None)
            extra = {"Accept-Ranges": "bytes"}
            if match:
                extra["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            self._send(206 if match else 200, data[start:], content_type, extra, value if kind == "drop" else None)

        do_HEAD = do_GET

    return Handler


@contextmanager
def serve() -> Iterator[FileServer]:
    files = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files))
    files.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield files
    finally:
        httpd.shutdown()
        httpd.server_close()
