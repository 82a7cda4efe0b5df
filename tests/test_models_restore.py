"""Restoring a checkpoint rebuilds its model from the checkpoint alone.

unet_resnet's model.encoder_weights names the ImageNet file the training run
started from; the checkpoint holds every weight since, so predict and evaluate
must not need that file (usually absent on the machine that predicts).
"""

from __future__ import annotations

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from unetcli.config.location import config_dir
from unetcli.core.checkpoints import save_checkpoint
from unetcli.core.hardware import Runtime
from unetcli.inference.restore import restore
from unetcli.models import ResNetEncoder, UNetResNet
from unetcli.models.contract import build_model

CPU = Runtime(torch.device("cpu"), None, False, 0, False)


def test_unet_resnet_restores_after_its_encoder_weights_file_is_gone(tmp_path):
    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(ResNetEncoder("resnet18").state_dict(), weights)  # torchvision's key names
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "model=unet_resnet",
                "model.encoder=resnet18",
                f"model.encoder_weights={weights}",
                "model.decoder_channels=[4,4,4,4,4]",
                f"paths.data_dir={tmp_path / 'data'}",
                "dataset.layout.num_objects=2",
                "dataset.layout.views=1",
                "dataset.layout.num_test=1",
                "dataset.layout.height=32",
                "dataset.layout.width=32",
            ],
        )
    model = build_model(cfg.model)
    assert torch.equal(model.encoder.conv1.weight, torch.load(weights)["conv1.weight"])
    # What restore reads of a training run's saved config, resolved as training saves it.
    saved = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "dataset")}
    checkpoint = tmp_path / "best.pt"
    save_checkpoint(
        {
            "model": model.state_dict(),
            "config": saved,
            "epoch": 3,
            "metrics": {"val/dice": 0.5},
        },
        checkpoint,
    )
    weights.unlink()

    restored = restore(checkpoint, OmegaConf.create({"root": None}), CPU)

    assert isinstance(restored.model, UNetResNet) and restored.epoch == 3
    assert not restored.model.training
    for key, value in model.state_dict().items():
        assert torch.equal(restored.model.state_dict()[key], value), key
    assert restored.config.model.encoder_weights == str(weights)  # the record is kept
