"""Every timm family the documentation lists, end to end at its smallest size.

One shared tester (segmentation_models.pytorch's habit): each family builds at odd input
sizes through the model contract, trains a few steps, checkpoints, resumes bit-exactly,
evaluates, predicts and exports with verification, at the opset the documentation
states. timm's own test networks (test_resnet, test_efficientnet, test_convnext) stand
for their families; MobileNetV3 and RegNet have none, so their smallest members do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import run_command, tiny_overrides
from unetcli.errors import UnetError
from unetcli.models import UNetTimm

pytestmark = pytest.mark.slow

#: The opset the documentation (docs/guides/encoders.md) states for every family below.
OPSET = 18


def last_model(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]


class EncoderTester:
    """The checks every family passes; a subclass names the family's encoder."""

    encoder: str

    def overrides(self, root: Path) -> list[str]:
        base = [o for o in tiny_overrides(root, objects=4) if not o.startswith("model.")]
        return [
            *base,
            "model=unet_timm",
            f"model.encoder={self.encoder}",
            "model.decoder_channels=[16,8,8,8,4]",
            "trainer.batch_size=4",
            "trainer.max_steps_per_epoch=2",
            "augmentation=flips",
            "dataset.layout.num_test=2",
        ]

    def test_builds_at_odd_sizes_through_the_contract(self):
        torch.manual_seed(0)
        model = UNetTimm(3, 2, self.encoder, decoder_channels=[8, 8, 8, 8, 8]).eval()
        assert model.input_multiple == 32 and model.valid_input_size(37) == 64
        with torch.no_grad():
            for height, width in [(37, 53), (61, 83), (32, 33)]:
                assert model(torch.randn(1, 3, height, width)).shape == (1, 2, height, width)

    def test_trains_resumes_evaluates_predicts_and_exports(self, tmp_path):
        common = self.overrides(tmp_path)
        result = run_command("train", [*common, "trainer.epochs=2"], tmp_path / "whole")
        run_command("train", [*common, "trainer.epochs=1"], tmp_path / "first")
        first = tmp_path / "first" / "checkpoints" / "last.pt"
        resume = [*common, "trainer.epochs=2", f"trainer.resume={first}"]
        run_command("train", resume, tmp_path / "resumed")
        whole, resumed = last_model(tmp_path / "whole"), last_model(tmp_path / "resumed")
        assert whole.keys() == resumed.keys()
        for key in whole:  # batch-norm buffers included
            assert torch.equal(whole[key], resumed[key]), key

        best = tmp_path / "whole" / "checkpoints" / "best.pt"
        quiet = ["hardware=cpu", "hardware.num_workers=0"]
        metrics = run_command(
            "evaluate", [f"checkpoint={best}", "evaluate.progress=false", *quiet], tmp_path / "ev"
        )
        # The images are generated at the training size: evaluate repeats validation.
        assert metrics["epoch"] == result["best_epoch"]
        assert metrics["metrics"]["dice"] == pytest.approx(result["best_value"], abs=1e-4)
        predict = [f"checkpoint={best}", "predict.progress=false", *quiet]
        submission = Path(run_command("predict", predict, tmp_path / "predict"))
        assert submission.is_file()
        verify = ["export.verify_images=1", "export.verify_sizes=[[37,53]]", "export.format=none"]
        export = [f"checkpoint={best}", f"export.opset={OPSET}", *verify]
        report = run_command("export", export, tmp_path / "export")
        assert report["opset"] == OPSET and len(report["checks"]) == 2
        assert report["max_difference"] < report["tolerance"]
        info = json.loads((tmp_path / "export" / "inference.json").read_text())
        assert info["geometry"]["size_multiple"] == 32


class TestResNet(EncoderTester):
    encoder = "test_resnet"


class TestEfficientNet(EncoderTester):
    encoder = "test_efficientnet"


class TestConvNeXt(EncoderTester):
    """ConvNeXt's first map is at 1/4: the decoder's last two blocks have no skip."""

    encoder = "test_convnext"


class TestMobileNetV3(EncoderTester):
    encoder = "mobilenetv3_small_050"


class TestRegNet(EncoderTester):
    encoder = "regnetx_002"


class TestEncoderOptions:
    """model.encoder_depth and model.drop_path_rate reach timm and shape the U-Net."""

    def test_encoder_depth_stops_the_encoder_and_the_decoder_early(self):
        torch.manual_seed(0)
        whole = UNetTimm(3, 1, "resnet18", decoder_channels=[8, 8, 8, 8, 8])
        model = UNetTimm(3, 1, "resnet18", decoder_channels=[8, 8, 8], encoder_depth=3).eval()
        assert model.encoder.feature_info.reduction() == [2, 4, 8]
        assert model.input_multiple == 8 and len(model.decoder) == 3
        # The stages past the deepest map kept are not built at all.
        count = lambda m: sum(p.numel() for p in m.encoder.parameters())  # noqa: E731
        assert count(model) < count(whole) / 10
        with torch.no_grad():
            assert model(torch.randn(1, 3, 37, 53)).shape == (1, 1, 37, 53)
        with pytest.raises(UnetError, match="model.decoder_channels needs three"):
            UNetTimm(3, 1, "resnet18", encoder_depth=3)
        with pytest.raises(UnetError, match="model.encoder_depth=6"):
            UNetTimm(3, 1, "resnet18", encoder_depth=6)

    def test_drop_path_rate_skips_residual_branches_in_training_only(self):
        model = UNetTimm(3, 1, "resnet18", decoder_channels=[8, 8, 8, 8, 8], drop_path_rate=0.5)
        rates = [m.drop_prob for m in model.modules() if type(m).__name__ == "DropPath"]
        assert rates and max(rates) == pytest.approx(0.5)
        x = torch.randn(2, 3, 32, 32)
        model.train()
        torch.manual_seed(1)
        first = model(x)
        torch.manual_seed(2)
        assert not torch.allclose(first, model(x))
        model.eval()
        with torch.no_grad():
            assert torch.equal(model(x), model(x))
        with pytest.raises(UnetError, match="model.drop_path_rate=1"):
            UNetTimm(3, 1, "resnet18", drop_path_rate=1)

    def test_residual_blocks_start_switched_on_from_random_weights(self):
        def zero_scales(model):
            return [name for name, m in model.encoder.named_modules()
                    if isinstance(m, torch.nn.BatchNorm2d) and not m.weight.any()]  # fmt: skip

        small = [8, 8, 8, 8, 8]
        assert zero_scales(UNetTimm(3, 1, "resnet18", decoder_channels=small)) == []
        # timm's own start: each of resnet18's 8 blocks ends in a zero-scale norm
        kept = UNetTimm(3, 1, "resnet18", decoder_channels=small, zero_init_last=True)
        assert len(zero_scales(kept)) == 8
        with pytest.raises(UnetError, match="model.zero_init_last must be true or false"):
            UNetTimm(3, 1, "resnet18", decoder_channels=small, zero_init_last="yes")
