"""The documentation site: the reference generated from conf/ is complete and current, the
site builds with `mkdocs build --strict`, no built page links to a page that does not exist,
and the home page, a guide and a reference page render in headless Chromium with their
navigation and search box.

The site needs the `docs` extra and the browser Debian's `chromium` package. Without them
the tests that need them are skipped, unless UNETCLI_DOCS_TESTS=required (as in CI), where a
missing tool is a failure.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from omegaconf import DictConfig

from tests.helpers import REPO, compose

REQUIRED = os.environ.get("UNETCLI_DOCS_TESTS") == "required"


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "docs_reference", REPO / "scripts" / "docs_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["docs_reference"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


def _missing_tool(what: str, how: str) -> None:
    message = f"{what} is not installed ({how})"
    if REQUIRED:
        pytest.fail(message + "; UNETCLI_DOCS_TESTS=required")
    pytest.skip(message)


def leaf_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf (a list is one leaf), without resolving interpolations."""
    paths = []
    for key in node:
        child = node._get_node(key)
        path = f"{prefix}{key}"
        if isinstance(child, DictConfig):
            paths += leaf_keys(child, path + ".")
        else:
            paths.append(path)
    return paths


# ---------------------------------------------------------------- the generated reference


def test_every_config_key_has_a_comment() -> None:
    assert generator.missing_comments() == [], (
        "write a comment above each of these keys in its YAML file, then run "
        "python scripts/docs_reference.py"
    )


def test_the_generated_reference_is_current() -> None:
    assert generator.stale() == [], "run python scripts/docs_reference.py"


@pytest.mark.parametrize(
    ("command", "overrides"),
    [("train", []), ("predict", ["checkpoint=x"]), ("evaluate", ["checkpoint=x"])],
)
def test_every_key_of_a_composed_config_is_in_the_reference(
    command: str, overrides: list[str]
) -> None:
    text = "\n".join(generator.pages().values())
    keys = [k for k in leaf_keys(compose(command, overrides)) if not k.startswith("hydra.")]
    assert len(keys) > 40
    missing = [k for k in keys if f"`{k}`" not in text]
    assert missing == []


def test_a_key_without_a_comment_is_found(tmp_path: Path) -> None:
    conf = tmp_path / "x.yaml"
    conf.write_text("# The file.\n\n# Documented.\na: 1\nb: 2  # trailing\nc:\n  d: 3\n")
    keys = {k.path: k.comment for k in generator.parse(conf.resolve(), root=tmp_path).keys}
    assert keys == {"a": ["Documented."], "b": ["trailing"], "c": [], "c.d": []}


# ---------------------------------------------------------------- the built site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with `mkdocs build --strict` into a temporary folder."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec(
        "material"
    ) is None:
        _missing_tool("mkdocs (with mkdocs-material)", 'pip install -e ".[docs]"')
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name == "href" or (name == "src" and tag in ("img", "script"))):
                self.links.append(value)


def _internal_target(site: Path, page: Path, link: str) -> Path | None:
    """The file an internal link of `page` points to; None for an external or in-page link."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or link.startswith(("#", "mailto:", "javascript:")):
        return None
    if not parts.path:
        return None
    base = site if parts.path.startswith("/") else page.parent
    target = (base / unquote(parts.path.lstrip("/"))).resolve()
    return target / "index.html" if target.is_dir() or parts.path.endswith("/") else target


def test_no_built_page_links_to_a_missing_page(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 30
    broken = []
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            target = _internal_target(site, page, link)
            if target is not None and not target.is_file():
                broken.append(f"{page.relative_to(site)} -> {link}")
    assert broken == []


class _Paragraphs(HTMLParser):
    """The text of every <p> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p":
            self.depth += 1
            self.texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.texts[-1] += data


def test_no_list_is_rendered_as_a_paragraph(site: Path) -> None:
    """Markdown starts a list only after a blank line: one written straight under a
    paragraph's last line is shown as that paragraph's text, dashes and all."""
    glued = []
    for page in sorted(site.rglob("*.html")):
        parser = _Paragraphs()
        parser.feed(page.read_text(encoding="utf-8"))
        glued += [f"{page.relative_to(site)}: {t.splitlines()[0][:60]}"
                  for t in parser.texts if "\n- " in t]  # fmt: skip
    assert glued == []

def test_the_docs_point_nowhere_outside_the_repository() -> None:
    files = [REPO / "README.md", REPO / "mkdocs.yml", REPO / "outputs" / "README.md"]
    files += sorted((REPO / "docs").rglob("*.md")) + sorted((REPO / "conf").rglob("*.yaml"))
    found = [str(f.relative_to(REPO)) for f in files if "../shared" in f.read_text()]
    assert found == []


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site on a loopback HTTP server, started and stopped here."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


REQUESTED: list[str] = []


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site silently, noting each path asked for."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        REQUESTED.append(self.path)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    _missing_tool("chromium", "apt-get install -y chromium")
    raise AssertionError  # not reached


def _rendered_dom(url: str, profile: Path) -> str:
    """The DOM of `url` after its scripts ran, from headless Chromium."""
    result = subprocess.run(
        [
            _chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", f"--user-data-dir={profile}",
            "--virtual-time-budget=5000", "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/", "unetcli"),
        ("/guides/your-own-data/", "Your own data"),
        ("/reference/commands/train/", "unet train"),
    ],
)
def test_a_page_renders_with_navigation_and_search(
    served: str, tmp_path: Path, path: str, heading: str
) -> None:
    dom = _rendered_dom(served + path, tmp_path / "profile")
    assert heading in dom
    assert 'class="md-nav' in dom, "no navigation in the rendered page"
    assert 'data-md-component="search-query"' in dom, "no search box in the rendered page"
    # The theme's script ran in the browser: it fetched the search index.
    assert any("search_index.json" in p for p in REQUESTED), REQUESTED
