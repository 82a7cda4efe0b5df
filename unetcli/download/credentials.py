"""Where the official kaggle client looks for credentials, checked before importing it.

`import kaggle` authenticates at import time and, without credentials, prints
a long help text and exits; looking first lets `unet download` say exactly
which variables and files were read, and how to get a token.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TOKEN_URL = "https://www.kaggle.com/settings"


def kaggle_config_dir() -> Path:
    """The folder the client reads kaggle.json from (same rule as kaggle 2.2.4).

    KAGGLE_CONFIG_DIR if set; else ~/.kaggle if it exists; else, on Linux,
    $XDG_CONFIG_HOME/kaggle (default ~/.config/kaggle).
    """
    configured = os.environ.get("KAGGLE_CONFIG_DIR")
    if configured:
        return Path(configured).expanduser()
    home = Path("~/.kaggle").expanduser()
    if home.exists() or not sys.platform.startswith("linux"):
        return home
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(xdg) / "kaggle"


def _token_file() -> Path | None:
    for name in ("access_token", "access_token.txt"):
        path = Path("~/.kaggle").expanduser() / name
        if path.is_file() and path.read_text().strip():
            return path
    return None


def _kaggle_json_keys(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def find_credentials() -> str | None:
    """A short description of the credentials the client will use, or None if there are none."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "the access token in KAGGLE_API_TOKEN"
    token_file = _token_file()
    if token_file is not None:
        return f"the access token in {token_file}"
    config = kaggle_config_dir() / "kaggle.json"
    keys = _kaggle_json_keys(config) if config.is_file() else {}
    username = os.environ.get("KAGGLE_USERNAME") or keys.get("username")
    key = os.environ.get("KAGGLE_KEY") or keys.get("key")
    if username and key:
        env = [v for v in ("KAGGLE_USERNAME", "KAGGLE_KEY") if os.environ.get(v)]
        where = " and ".join(env) if len(env) == 2 else str(config)
        return f"the API key of user '{username}' from {where}"
    oauth = Path("~/.kaggle/credentials.json").expanduser()
    if oauth.is_file():
        return f"the OAuth login in {oauth} (`kaggle auth login`)"
    return None


def missing_credentials_message() -> str:
    config = kaggle_config_dir() / "kaggle.json"
    config_dir = os.environ.get("KAGGLE_CONFIG_DIR")
    where = f"KAGGLE_CONFIG_DIR={config_dir}" if config_dir else "KAGGLE_CONFIG_DIR is not set"
    return (
        "no Kaggle credentials found. unet download uses the official kaggle client, which "
        "reads, in this order: the variable KAGGLE_API_TOKEN (a token, or a file holding one); "
        f"the file {Path('~/.kaggle/access_token').expanduser()}; the variables KAGGLE_USERNAME "
        f'and KAGGLE_KEY; the file {config} ({where}) with "username" and "key"; and an '
        f"OAuth login in {Path('~/.kaggle/credentials.json').expanduser()} (`kaggle auth "
        f"login`). To get a token: sign in at kaggle.com, open {TOKEN_URL}, and under API "
        "choose Create New Token (or Create Legacy API Key, which downloads kaggle.json); then "
        f"export KAGGLE_API_TOKEN=<token>, or save kaggle.json as {config} with chmod 600, "
        "and run the command again."
    )
