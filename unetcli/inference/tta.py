"""Test-time augmentation: predict on flipped/rotated copies, map back, average probabilities.

Each transform is its own inverse's partner on tensors (N, C, H, W): with the identity they
are the eight flips and rotations of a square (transverse: the flip about the anti-diagonal); the
identity is always included, so `predict.tta=[hflip]` averages two views.
Probabilities, not logits, are averaged, as the Carvana write-ups did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from unetcli.errors import UnetError

_FORWARD: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "hflip": lambda x: x.flip(-1),
    "vflip": lambda x: x.flip(-2),
    "rot90": lambda x: x.rot90(1, (-2, -1)),
    "rot180": lambda x: x.rot90(2, (-2, -1)),
    "rot270": lambda x: x.rot90(3, (-2, -1)),
    "transpose": lambda x: x.transpose(-2, -1),
    "transverse": lambda x: x.rot90(2, (-2, -1)).transpose(-2, -1),
}
_INVERSE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "hflip": lambda y: y.flip(-1),
    "vflip": lambda y: y.flip(-2),
    "rot90": lambda y: y.rot90(3, (-2, -1)),
    "rot180": lambda y: y.rot90(2, (-2, -1)),
    "rot270": lambda y: y.rot90(1, (-2, -1)),
    "transpose": lambda y: y.transpose(-2, -1),
    "transverse": lambda y: y.rot90(2, (-2, -1)).transpose(-2, -1),
}
TTA_NAMES = tuple(_FORWARD)


def check_tta(names: Sequence[str], key: str) -> list[str]:
    """The list of TTA transforms, validated; `key` names the config key in errors."""
    names = [str(n) for n in (names or [])]
    unknown = [n for n in names if n not in _FORWARD]
    if unknown:
        raise UnetError(
            f"{key} holds unknown transform(s) {unknown}; choose from {list(TTA_NAMES)}, "
            f"e.g. {key}=[hflip,vflip]"
        )
    if len(set(names)) != len(names):
        raise UnetError(f"{key} lists a transform twice: {names}")
    return names


def with_tta(
    predict: Callable[[torch.Tensor], torch.Tensor],
    names: Sequence[str],
    identity: bool = True,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap `predict` (images -> probabilities, same spatial size) with TTA averaging.

    `identity=False` averages the named views alone (one view: that view's probabilities,
    mapped back), which the recipe search saves per view and combines itself.
    """
    if not names:
        return predict

    def averaged(images: torch.Tensor) -> torch.Tensor:
        total = predict(images).clone() if identity else None
        for name in names:
            view = _INVERSE[name](predict(_FORWARD[name](images)))
            if total is None:
                total = view.clone()
            else:
                total += view
        return total / (len(names) + int(identity))

    return averaged
