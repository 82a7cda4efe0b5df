"""Discriminative learning rates: the encoder learns at optimizer.encoder_lr_factor x lr.

A pretrained encoder already holds good features; the decoder starts from random weights.
Fine-tuning gives the encoder a smaller rate (e.g. 0.1) so that the decoder's early, large
gradients do not wash its features out. The encoder becomes a second parameter group
whose "lr_factor" the schedule reads (one-cycle's peak rate is scaled by it too).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from unetcli.errors import UnetError


def encoder_of(model: nn.Module, key: str) -> nn.Module:
    """The model's `encoder` module, or one paragraph saying that `key` needs one."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise UnetError(
            f"{key} acts on a model's pretrained encoder, and {type(model).__name__} has "
            "none (no `encoder` module). Use it with model=unet_timm or model=unet_resnet, or "
            f"leave {key} at its default for this model."
        )
    return encoder


def parameter_groups(
    model: nn.Module | Iterable[nn.Parameter], lr: float, factor: float | None
) -> list[dict]:
    """The optimizer's parameter groups: one group, or the rest and the encoder at factor x lr.

    `model` may also be plain parameters (one group; they have no encoder to set apart)."""
    if factor is None or float(factor) == 1.0:
        params = model.parameters() if isinstance(model, nn.Module) else model
        return [{"params": list(params)}]
    encoder = encoder_of(model, "optimizer.encoder_lr_factor")
    inside = {id(p) for p in encoder.parameters()}
    rest = [p for p in model.parameters() if id(p) not in inside]
    scaled = {"lr": lr * float(factor), "lr_factor": float(factor)}
    return [{"params": rest}, {"params": list(encoder.parameters()), **scaled}]
