"""Where an encoder's pretrained weights come from, read so that no file can run code.

`model.pretrained=true` takes timm's default weights for the encoder from the Hugging Face
hub cache (downloading them once where there is a network; with HF_HUB_OFFLINE=1 only the
cache is read); `model.pretrained=PATH` reads a local file. Both end here as a plain dict
of tensors: `.safetensors` through safetensors, anything else through
`torch.load(weights_only=True)`. When the weights cannot be had, one paragraph says which
file was looked for, where, and how to fetch it on a machine with a network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from unetcli.core.checkpoints import load_weights_only
from unetcli.errors import UnetError

#: The weight files timm looks for in a hub repository, the safe one first.
HUB_FILES = ("model.safetensors", "pytorch_model.bin")
FALSE_WORDS = ("", "false", "none", "null", "0", "no")


def wants_pretrained(pretrained: Any) -> bool:
    """model.pretrained as a yes/no: false, null and empty mean random weights."""
    if isinstance(pretrained, bool) or pretrained is None:
        return bool(pretrained)
    return str(pretrained).strip().lower() not in FALSE_WORDS


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, read from the environment now (HF_HUB_CACHE, then
    HF_HOME/hub, then ~/.cache/huggingface/hub), as the hub client itself finds it."""
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if cache:
        return Path(cache).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        home = str(Path(xdg) / "huggingface")
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    """HF_HUB_OFFLINE=1 (or true/yes): the cache only, no network request at all."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_weights(encoder: str, hub_id: str, filename: str | None) -> Path:
    """The cached (or, with a network, downloaded) weight file of `hub_id`, or one paragraph."""
    from huggingface_hub import hf_hub_download

    cache, local_only = hub_cache(), offline()
    reasons = []
    for name in (filename,) if filename else HUB_FILES:
        try:
            return Path(hf_hub_download(hub_id, name, cache_dir=cache, local_files_only=local_only))
        except Exception as err:  # any failure means: not to be had here
            reasons.append(f"{name}: {type(err).__name__}")
    wanted = filename or HUB_FILES[0]
    folder = cache / f"models--{hub_id.replace('/', '--')}"
    why = (
        "HF_HUB_OFFLINE=1, so only the cache was read"
        if local_only
        else ("the hub could not be reached and the cache lacks it")
    )
    raise UnetError(
        f"model.pretrained=true needs timm's weights for model.encoder={encoder}: the file "
        f"{wanted} of the Hugging Face repository {hub_id}, looked for in the hub cache {cache} "
        f"(folder {folder.name}; {why}; {', '.join(reasons)}). On a machine with a network run "
        f'`hf download {hub_id} {wanted}` (or python -c "import timm; '
        f"timm.create_model('{encoder}', pretrained=True)\") and copy the folder "
        f"<its cache>/{folder.name} into {cache} here (HF_HUB_CACHE or HF_HOME set where the "
        "cache is); or copy the file and pass model.pretrained=PATH; or set "
        "model.pretrained=false to start from random weights."
    )


def url_weights(encoder: str, url: str) -> UnetError:
    """The paragraph for an encoder whose weights timm keeps at a URL, not on the hub."""
    return UnetError(
        f"timm keeps the pretrained weights of model.encoder={encoder} at {url}, not on the "
        "Hugging Face hub, and unetcli reads only the hub cache or a local file. On a machine "
        f"with a network download that file, copy it here and pass model.pretrained=PATH "
        "(a .pth is read weights-only); or set model.pretrained=false."
    )


def read_weights(path: Path, key: str = "model.pretrained") -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors or weights-only .pth/.pt/.bin file, as a flat state_dict.

    A checkpoint that wraps its weights ({"state_dict": ...}, {"model": ...}) is unwrapped
    and DataParallel's "module." prefix dropped.
    """
    if not path.is_file():
        raise UnetError(
            f"{key}={path} does not exist. Pass the path of a .safetensors or .pth file that "
            "holds the encoder's weights (timm's names, e.g. a hub repository's "
            "model.safetensors), model.pretrained=true for timm's own from the hub cache, or "
            "model.pretrained=false."
        )
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise UnetError(f"cannot read {key}={path} as safetensors: {err}") from err
    else:
        state = load_weights_only(path, key)
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UnetError(
            f"{key}={path} holds no state_dict (a dict of tensors by parameter name); save "
            "one with safetensors.torch.save_file(model.state_dict(), PATH)"
        )
    return {str(k).removeprefix("module."): v for k, v in state.items()}
