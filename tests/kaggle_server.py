"""A loopback stand-in for Kaggle's API that the real kaggle client talks to.

The client (kaggle 2.2.4) with KAGGLE_API_ENVIRONMENT=LOCALHOST sends its
requests to http://localhost/api/v1/...; with HTTP_PROXY pointing here (and
NO_PROXY empty) they arrive at this server as proxy requests. It answers like
Kaggle: JSON POSTs to the competition and dataset services, errors as
`{"code": ..., "message": ...}`, downloads as a redirect to a file that is
served with Content-Length, ETag, Last-Modified and Range support. Tests add
files, switch on failures (rules not accepted, a transfer cut after N bytes)
and read back the requests it saw.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

USERNAME, KEY = "unet-tester", "0123456789abcdef0123456789abcdef"
TOKEN = "KGAT_loopback_token_for_tests"
RULES_MESSAGE = "You must accept this competition's rules before you'll be able to download files."


@dataclass
class Seen:
    method: str
    path: str
    body: dict
    headers: dict


@dataclass
class State:
    # competition -> {file name: bytes}; plus the whole archive under ALL.
    competitions: dict[str, dict[str, bytes]] = field(default_factory=dict)
    datasets: dict[str, bytes] = field(default_factory=dict)
    rules_not_accepted: set[str] = field(default_factory=set)
    per_file_endpoint: bool = True
    # blob path -> bytes to send before dropping the connection, for the next N GETs.
    cuts: dict[str, tuple[int, int]] = field(default_factory=dict)
    # blob suffix -> seconds to stall after the first 64 KiB (a slow transfer).
    stalls: dict[str, float] = field(default_factory=dict)
    # Set once a stalled transfer has sent its first 64 KiB and waits: the client
    # is then inside that transfer.
    stalling: threading.Event = field(default_factory=threading.Event)
    seen: list[Seen] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)


class KaggleServer:
    """Start with `with KaggleServer() as server:`; `server.env(home)` gives the client's env."""

    def __init__(self) -> None:
        self.state = State()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> KaggleServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    # --- content ----------------------------------------------------------------
    def add_competition(self, name: str, files: dict[str, bytes], whole: bytes) -> None:
        self.state.competitions[name] = {**files, "__all__": whole}

    def add_dataset(self, slug: str, archive: bytes) -> None:
        self.state.datasets[slug] = archive

    def cut_next(self, blob_suffix: str, after_bytes: int, times: int = 1) -> None:
        """Drop the connection after `after_bytes` for the next `times` GETs of that file."""
        self.state.cuts[blob_suffix] = (after_bytes, times)

    def requests(self, kind: str = "") -> list[Seen]:
        with self.lock:
            return [s for s in self.state.seen if kind in s.path]

    def clear_requests(self) -> None:
        with self.lock:
            self.state.seen.clear()

    # --- the client's environment -------------------------------------------------
    def env(self, home: Path, credentials: str = "kaggle.json", key: str = KEY) -> dict[str, str]:
        """Environment for a `unet download` subprocess: no real KAGGLE_* settings, a
        temporary HOME, credentials of the chosen kind, and every request sent here."""
        import os

        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KAGGLE_")}
        for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            env.pop(name, None)
        config = home / ".kaggle"
        config.mkdir(parents=True, exist_ok=True)
        if credentials == "kaggle.json":
            path = config / "kaggle.json"
            path.write_text(json.dumps({"username": USERNAME, "key": key}))
            path.chmod(0o600)
        elif credentials == "token":
            env["KAGGLE_API_TOKEN"] = TOKEN if key == KEY else key
        proxy = f"http://127.0.0.1:{self.port}"
        env.update(
            HOME=str(home),
            KAGGLE_CONFIG_DIR=str(config),
            KAGGLE_API_ENVIRONMENT="LOCALHOST",
            HTTP_PROXY=proxy,
            http_proxy=proxy,
            NO_PROXY="",
            no_proxy="",
            NO_ALBUMENTATIONS_UPDATE="1",
        )
        return env


def _handler(server: KaggleServer) -> type[BaseHTTPRequestHandler]:
    state, lock = server.state, server.lock

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        # --- plumbing ---------------------------------------------------------
        def _path(self) -> str:
            return unquote(urlsplit(self.path).path)

        def _record(self, body: dict) -> None:
            with lock:
                state.seen.append(Seen(self.command, self._path(), body, dict(self.headers)))

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._json(status, {"code": status, "message": message})

        def _authorised(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
                return (user, key) == (USERNAME, KEY)
            return auth == f"Bearer {TOKEN}"

        def _redirect(self, blob: str, data: bytes) -> None:
            with lock:
                state.blobs[blob] = data
            self.send_response(302)
            self.send_header("Location", f"http://localhost/blobs/{quote(blob)}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        # --- API --------------------------------------------------------------
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            self._record(body)
            path = self._path()
            if path.endswith("/security.OAuthService/IntrospectToken"):
                active = body.get("token") == TOKEN
                return self._json(200, {"active": active, "username": USERNAME if active else ""})
            if not self._authorised():
                return self._error(401, "Unauthenticated")
            if path.endswith("/competitions.CompetitionApiService/DownloadDataFile"):
                if not state.per_file_endpoint:
                    return self._error(404, "Not found")
                return self._competition(body.get("competitionName"), body.get("fileName"))
            if path.endswith("/competitions.CompetitionApiService/DownloadDataFiles"):
                return self._competition(body.get("competitionName"), None)
            if path.endswith("/datasets.DatasetApiService/DownloadDataset"):
                slug = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
                if slug not in state.datasets:
                    return self._error(404, "Dataset not found")
                return self._redirect(f"datasets/{slug}/archive.zip", state.datasets[slug])
            return self._error(404, f"no such endpoint {path}")

        def _competition(self, name: str | None, file_name: str | None) -> None:
            files = state.competitions.get(name or "")
            if files is None:
                return self._error(404, "Competition not found")
            if name in state.rules_not_accepted:
                return self._error(403, RULES_MESSAGE)
            if file_name is None:
                return self._redirect(f"competitions/{name}/{name}.zip", files["__all__"])
            if file_name not in files:
                return self._error(404, "File not found")
            # Like Kaggle, a file that is not an archive comes zipped.
            blob = file_name if file_name.endswith(".zip") else f"{file_name}.zip"
            return self._redirect(f"competitions/{name}/{blob}", files[file_name])

        # --- files ------------------------------------------------------------
        def do_GET(self) -> None:  # noqa: N802
            self._record({})
            path = self._path()
            blob = path.removeprefix("/blobs/")
            with lock:
                data = state.blobs.get(blob)
            if data is None:
                return self._error(404, "No such file")
            etag = '"' + hashlib.md5(data).hexdigest() + '"'
            start = 0
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes=") and self.headers.get("If-Range", etag) == etag:
                start = int(ranged[6:].split("-")[0])
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(1_700_000_000, usegmt=True))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = None
            with lock:
                for suffix, (after, times) in list(state.cuts.items()):
                    if blob.endswith(suffix) and times > 0:
                        cut = after
                        state.cuts[suffix] = (after, times - 1)
            stall = next((t for k, t in state.stalls.items() if blob.endswith(k)), None)
            if cut is None and stall is not None:
                self.wfile.write(body[:65536])
                self.wfile.flush()
                state.stalling.set()
                time.sleep(stall)
                self.wfile.write(body[65536:])
                return
            if cut is None:
                self.wfile.write(body)
                return
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # the transfer is cut mid-file

    return Handler
