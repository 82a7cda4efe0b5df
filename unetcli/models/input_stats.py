"""The normalisation a run uses: the dataset's own, else what its pretrained encoder expects.

`dataset.mean` / `dataset.std` may be null. A run resolves them once, as it starts: from
the pretrained config of its encoder when the model is a pretrained timm model (torchvision's
ImageNet figures for unet_resnet with model.encoder_weights), else the generic 0.5 / 0.25.
The numbers go into the config the checkpoint stores, so evaluate, predict, export and the
runner use the same ones.
"""

from __future__ import annotations

from omegaconf import DictConfig

from unetcli.errors import UnetError
from unetcli.models.pretrained import wants_pretrained
from unetcli.models.timm_encoder import encoder_stats

GENERIC = (0.5, 0.25)
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def _from_model(model_cfg: DictConfig, channels: int) -> tuple[list, list, str] | None:
    """(mean, std, where from) that the model's pretrained weights expect, if it has any."""
    target = str(model_cfg.get("_target_", ""))
    if target.endswith("UNetTimm") and wants_pretrained(model_cfg.get("pretrained")):
        stats = encoder_stats(str(model_cfg.encoder), channels)
        if stats:
            return *stats, f"the pretrained config of model.encoder={model_cfg.encoder}"
    if target.endswith("UNetResNet") and model_cfg.get("encoder_weights"):
        index = [i % 3 for i in range(channels)]
        mean, std = ([v[i] for i in index] for v in IMAGENET)
        return mean, std, "torchvision's ImageNet figures (model.encoder_weights)"
    return None


def input_stats(dataset_cfg: DictConfig, model_cfg: DictConfig) -> tuple[list, list, str]:
    """(mean, std, where they come from) for a run: dataset.mean/std where they are set."""
    channels = int(dataset_cfg.in_channels)
    mean, std = dataset_cfg.get("mean"), dataset_cfg.get("std")
    if mean is not None and std is not None:
        return list(mean), list(std), "dataset.mean/std"
    found = _from_model(model_cfg, channels)
    if found is None:
        found = [GENERIC[0]] * channels, [GENERIC[1]] * channels, "the generic default"
    source = f"{found[2]} (dataset.mean/std null)"
    chosen = (
        list(mean) if mean is not None else found[0],
        list(std) if std is not None else found[1],
    )
    for key, values in zip(("mean", "std"), chosen):
        if len(values) != channels:
            raise UnetError(
                f"dataset.{key} has {len(values)} values but dataset.in_channels is {channels}; "
                f"give one per channel, or set dataset.{key}=null"
            )
    return *chosen, source


def resolve_input_stats(cfg: DictConfig) -> str:
    """Fill a null dataset.mean / dataset.std of the run's config in place; the start line
    that says which numbers the run normalises with and where they come from."""
    mean, std, source = input_stats(cfg.dataset, cfg.model)
    cfg.dataset.mean, cfg.dataset.std = mean, std
    shown = ", ".join(f"{v:.3f}" for v in mean), ", ".join(f"{v:.3f}" for v in std)
    return f"normalisation: mean [{shown[0]}], std [{shown[1]}] from {source}"
