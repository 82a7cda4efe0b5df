"""The official kaggle client, imported lazily, with its failures turned into clear errors.

kaggle 2.2.4 authenticates when imported (printing a help text and exiting
without credentials), raises `requests.HTTPError` for API errors (the JSON
body carries `code` and `message`), and leaves an incomplete file plus a
`<file>.kaggle-partial` marker when a transfer is cut; the next call resumes
it with a Range request. This module is the only place that touches it.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import io
import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from unetcli.download.credentials import TOKEN_URL, find_credentials, missing_credentials_message
from unetcli.errors import UnetError

T = TypeVar("T")

PARTIAL_SUFFIX = ".kaggle-partial"
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class KaggleHTTPError(UnetError):
    """An HTTP error answered by Kaggle; `status` is its code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def download_needed(response, outfile: Path) -> bool:
    """kaggle's rule (fetch unless a local file is complete and newer), without its bare except.

    kaggle 2.2.4's `download_needed` wraps this in `except: pass`, so a Ctrl-C that landed
    while it parsed the Last-Modified header was swallowed and the transfer went on to the end.
    """
    if not outfile.is_file():
        return True
    try:
        remote_date = datetime.strptime(
            response.headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S %Z"
        )
        remote_size = int(response.headers["Content-Length"])
    except (KeyError, ValueError, TypeError):
        return True
    stat = outfile.stat()
    return stat.st_size < remote_size or remote_date > datetime.fromtimestamp(stat.st_mtime)


def disk_full_error(err: OSError, path: Path | str) -> UnetError:
    where = err.filename or path
    return UnetError(
        f"the disk is full (or a size quota was hit) while writing {where}: {err.strerror}. "
        f"Free space on the disk holding {path}, or set dataset.root (or paths.data_dir) to a "
        "disk with room, and run `unet download` again; what was fetched so far is kept and "
        "resumed."
    )


def interruptible(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`call(*args, **kwargs)` on a worker thread while this thread waits for it.

    Ctrl-C is delivered to the main thread: waiting here in short joins, it raises
    KeyboardInterrupt at once, wherever the client is in its transfer (inside the client's
    loop a SIGINT was now and then lost and the transfer went on). The worker is a daemon:
    the process ends without it, leaving its partial file to be resumed.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = call(*args, **kwargs)
        except BaseException as err:  # re-raised in the waiting thread
            box["error"] = err

    thread = threading.Thread(target=work, name="unet-download", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["value"]


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


class KaggleClient:
    """Authenticated access to competition and dataset downloads.

    `retries` is how often the client itself retries a cut transfer (resuming
    it) before giving up; each wait doubles (2, 4, 8 ... s).
    """

    def __init__(self, retries: int = 5) -> None:
        self.credentials = find_credentials()
        if self.credentials is None:
            raise UnetError(missing_credentials_message())
        try:
            with _quiet():
                from kaggle.api.kaggle_api_extended import KaggleApi
        except ImportError as err:
            raise UnetError(
                f"the kaggle client cannot be imported ({err}); install it with "
                "pip install 'kaggle>=2.2.4,<2.2.5' six"
            ) from err

        parent = KaggleApi.download_file

        class _Api(KaggleApi):
            def download_file(self, *args, **kwargs):  # kaggle's own signature, retries ours
                bound = inspect.signature(parent).bind(self, *args, **kwargs)
                bound.arguments["max_retries"] = retries
                return parent(*bound.args, **bound.kwargs)

            def download_needed(self, response, outfile, quiet=True):  # kaggle's signature
                return download_needed(response, Path(outfile))

        self.api = _Api()
        with _quiet() as said, self.errors("signing in to Kaggle"):
            try:
                self.api.authenticate()
            except SystemExit:
                raise UnetError(
                    f"Kaggle did not accept {self.credentials}: the client could not sign in "
                    f"({' '.join(said.getvalue().split()[:12])} ...). Create a new token at "
                    f"{TOKEN_URL} (API, Create New Token) and run again."
                ) from None

    # --- downloads ----------------------------------------------------------------
    def competition_file(self, competition: str, file_name: str, folder: Path, force: bool):
        folder.mkdir(parents=True, exist_ok=True)
        what = f"file {file_name} of competition {competition}"
        with self.errors(what, folder, competition=competition, file_name=file_name):
            interruptible(
                self.api.competition_download_file,
                competition, file_name, path=str(folder), force=force, quiet=False,
            )  # fmt: skip
        return downloaded_file(folder, what)

    def competition_files(self, competition: str, folder: Path, force: bool) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        what = f"the files of competition {competition}"
        with self.errors(what, folder, competition=competition):
            interruptible(
                self.api.competition_download_files,
                competition, path=str(folder), force=force, quiet=False,
            )  # fmt: skip
        return downloaded_file(folder, what)

    def dataset_files(self, dataset: str, folder: Path, force: bool) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        what = f"dataset {dataset}"
        with self.errors(what, folder, dataset=dataset):
            interruptible(
                self.api.dataset_download_files, dataset, path=str(folder), force=force, quiet=False
            )
        return downloaded_file(folder, what)

    # --- errors -------------------------------------------------------------------
    @contextlib.contextmanager
    def errors(
        self,
        what: str,
        folder: Path | None = None,
        competition: str | None = None,
        dataset: str | None = None,
        file_name: str | None = None,
    ) -> Iterator[None]:
        """Turn the client's exceptions into UnetErrors that say what to do."""
        import requests
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            yield
        except requests.HTTPError as err:
            status, message = _status_and_message(err)
            raise KaggleHTTPError(
                self._http_message(status, message, what, competition, dataset, file_name), status
            ) from err
        except OSError as err:
            if err.errno in DISK_FULL:
                raise disk_full_error(err, folder or ".") from err
            if isinstance(err, (requests.RequestException, ConnectionError)):
                raise self._transfer_error(err, what, folder) from err
            raise UnetError(f"cannot write the download of {what} ({err})") from err
        except (requests.RequestException, Urllib3Error) as err:
            raise self._transfer_error(err, what, folder) from err
        except ValueError as err:
            # The client's own check: "Downloaded file size (n) does not match expected size".
            if "does not match expected size" in str(err):
                raise self._transfer_error(err, what, folder) from err
            raise UnetError(f"the kaggle client rejected the request for {what}: {err}") from err

    def _http_message(
        self,
        status: int,
        message: str,
        what: str,
        competition: str | None,
        dataset: str | None,
        file_name: str | None,
    ) -> str:
        said = f"Kaggle answered {status} ({message})" if message else f"Kaggle answered {status}"
        if status == 401:
            return (
                f"{said} to the request for {what}: the credentials were rejected "
                f"({self.credentials}). Create a new token at {TOKEN_URL} (API, Create New "
                "Token), replace the old one, and run again."
            )
        if status == 403 and competition:
            return (
                f"{said} to the request for {what}: this account has not accepted the "
                f"competition's rules yet. Open https://www.kaggle.com/competitions/{competition}"
                "/rules, sign in with the same account, accept the rules, and run again."
            )
        if status == 403:
            return (
                f"{said} to the request for {what}: this account may not download it (a private "
                f"dataset, or terms to accept at https://www.kaggle.com/datasets/{dataset})."
            )
        if status == 404 and file_name:
            return (
                f"{said}: competition {competition} has no file {file_name}. Check "
                "dataset.kaggle.files against the competition's Data page."
            )
        if status == 404 and competition:
            return (
                f"{said}: there is no competition named {competition} on Kaggle. Check "
                "dataset.kaggle.competition."
            )
        if status == 404:
            return (
                f"{said}: there is no dataset {dataset} on Kaggle (or it was removed). Check "
                "dataset.kaggle.dataset (owner/name, as in the dataset's URL)."
            )
        if status == 429:
            return f"{said} to the request for {what}: too many requests; wait and run again."
        return f"{said} to the request for {what}. Run again later, or check kaggle.com."

    def _transfer_error(self, err: Exception, what: str, folder: Path | None) -> UnetError:
        partial = partial_file(folder) if folder is not None else None
        if partial is None:
            return UnetError(
                f"cannot reach Kaggle to download {what} ({type(err).__name__}: {err}). Check the "
                "network connection (and HTTPS_PROXY if you use one) and run again."
            )
        path, have, total = partial
        size = f"{have} of {total} bytes" if total else f"{have} bytes"
        return UnetError(
            f"the transfer of {what} was cut ({type(err).__name__}) after {size}. Nothing was "
            f"unpacked; the partial file is kept at {path} and the next `unet download` with the "
            "same dataset=... resumes it (download.force=true starts over)."
        )


def _status_and_message(err: Exception) -> tuple[int, str]:
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None) or 0
    message = ""
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            status = int(body.get("code") or status)
            message = str(body.get("message") or "")
    if not message and err.args:
        message = str(err.args[0])
    return int(status), message.strip()


def partial_file(folder: Path, marked_only: bool = False) -> tuple[Path, int, int | None] | None:
    """(file, bytes present, expected total) of an interrupted transfer in `folder`, if any.

    The client marks a resumable partial with `<file>.kaggle-partial`; without
    `marked_only`, any file left in the download's own folder counts (a server
    that allows no resume gets no marker).
    """
    for marker in sorted(folder.glob(f"*{PARTIAL_SUFFIX}")):
        path = marker.with_name(marker.name[: -len(PARTIAL_SUFFIX)])
        total = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            total = json.loads(marker.read_text()).get("size")
        return path, path.stat().st_size if path.is_file() else 0, total
    if not marked_only and folder.is_dir():
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            return path, path.stat().st_size, None
    return None


def downloaded_file(folder: Path, what: str) -> Path:
    """The one complete file the client left in `folder`."""
    partial = partial_file(folder, marked_only=True)
    if partial is not None:
        raise UnetError(
            f"the download of {what} did not finish: {partial[0]} is incomplete. Run `unet "
            "download` again to resume it."
        )
    files = [p for p in folder.iterdir() if p.is_file()]
    if len(files) != 1:
        raise UnetError(
            f"expected one downloaded file for {what} in {folder}, found {len(files)}: "
            f"{', '.join(p.name for p in files) or 'none'}. Run again with download.force=true."
        )
    return files[0]
