"""unet_timm's pretrained weights, offline-first: a local file, a hub cache folder laid out as
the hub client lays it out, the paragraph when neither has them; inputs that follow the
encoder (first convolution, normalisation); the refusals, each one paragraph."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import timm
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from tests.helpers import compose, run_command, tiny_overrides
from unetcli.core.checkpoints import save_checkpoint
from unetcli.datasets.layouts import build_layout
from unetcli.errors import UnetError
from unetcli.models import UNetResNet, UNetTimm
from unetcli.models.contract import build_model
from unetcli.models.input_stats import input_stats

ENCODER = "test_resnet"
TINY = [8, 8, 8, 8, 8]


def random_weights(name: str = ENCODER, seed: int = 3) -> dict[str, torch.Tensor]:
    """A classification network's state_dict under timm's names, as a hub file holds it."""
    torch.manual_seed(seed)
    return timm.create_model(name).state_dict()


def as_file(state: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    """The file's tensor for an encoder key (the features-only wrapper writes stages_0
    for stages.0)."""
    plain = {k.replace("_", "."): v for k, v in state.items()}
    return plain[key.replace("_", ".")]


def hub_cache(root: Path, name: str, state: dict) -> Path:
    """A Hugging Face hub cache holding `name`'s default weights, laid out as the client
    writes it: models--<org>--<repo>/refs/main names a snapshot folder with the file."""
    repo = root / ("models--" + timm.get_pretrained_cfg(name).hf_hub_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file(state, str(snapshot / "model.safetensors"))
    return root


@pytest.fixture
def offline(monkeypatch, tmp_path) -> Path:
    """HF_HUB_OFFLINE=1 and an empty hub cache of the test's own."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("name", ["test_resnet", "test_convnext"])
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_pretrained_from_a_local_file_equals_the_files_tensors(tmp_path, name, suffix):
    state = random_weights(name)
    path = tmp_path / f"weights{suffix}"
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    model = UNetTimm(3, 1, name, pretrained=str(path), decoder_channels=TINY)
    loaded = model.encoder.state_dict()
    assert len(loaded) > 20
    for key, value in loaded.items():
        assert torch.equal(value, as_file(state, key)), key


def test_pretrained_true_reads_a_hub_cache_offline(offline):
    state = random_weights()
    hub_cache(offline, ENCODER, state)
    model = UNetTimm(3, 1, ENCODER, pretrained=True, decoder_channels=TINY)
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, as_file(state, key)), key


def test_an_empty_hub_cache_is_one_paragraph_naming_file_place_and_command(offline):
    repo = timm.get_pretrained_cfg(ENCODER).hf_hub_id
    with pytest.raises(UnetError) as caught:
        UNetTimm(3, 1, ENCODER, pretrained=True, decoder_channels=TINY)
    message = str(caught.value)
    assert f"model.safetensors of the Hugging Face repository {repo}" in message
    assert str(offline) in message and "HF_HUB_OFFLINE=1" in message
    assert f"`hf download {repo} model.safetensors`" in message
    assert "\n" not in message


def test_unet_train_with_an_empty_cache_stops_with_the_paragraph(offline, tmp_path):
    small = [o for o in tiny_overrides(tmp_path, objects=4) if not o.startswith("model.")]
    args = ["model=unet_timm", f"model.encoder={ENCODER}", "model.pretrained=true"]
    with pytest.raises(UnetError, match=r"^model.pretrained=true needs timm's weights"):
        run_command("train", [*small, *args], tmp_path / "run")


@pytest.mark.parametrize("channels", [1, 4])
def test_other_channel_counts_adapt_the_first_convolution(tmp_path, channels):
    state = random_weights()
    save_file(state, str(tmp_path / "w.safetensors"))
    model = UNetTimm(channels, 1, ENCODER, str(tmp_path / "w.safetensors"), TINY)
    first = timm.get_pretrained_cfg(ENCODER).first_conv + ".weight"
    rgb = state[first]
    if channels == 1:  # timm sums the RGB filters for one grey channel
        expected = rgb.sum(dim=1, keepdim=True)
    else:  # and repeats them for more, scaled to keep the response
        expected = rgb.repeat(1, math.ceil(channels / 3), 1, 1)[:, :channels] * (3 / channels)
    assert torch.allclose(model.encoder.state_dict()[first], expected)
    assert model(torch.randn(1, channels, 37, 41)).shape == (1, 1, 37, 41)


def test_a_unet_resnet_checkpoint_loads_into_unet_timm_unchanged():
    torch.manual_seed(0)
    old = UNetResNet(3, 1, "resnet18", decoder_channels=TINY).eval()
    new = UNetTimm(3, 1, "resnet18", decoder_channels=TINY).eval()
    new.load_state_dict(old.state_dict())  # the same keys: torchvision's names, one decoder
    x = torch.randn(1, 3, 45, 70)
    with torch.no_grad():
        assert torch.allclose(old(x), new(x), atol=1e-6)


# --- inputs follow the encoder ----------------------------------------------------------


def stats(*overrides: str) -> tuple[list, list, str]:
    cfg = compose("train", ["model=unet_timm", f"model.encoder={ENCODER}", *overrides])
    return input_stats(cfg.dataset, cfg.model)


def test_normalisation_comes_from_the_dataset_else_the_encoder_else_the_default():
    null = ["dataset.mean=null", "dataset.std=null"]
    pretrained = timm.get_pretrained_cfg(ENCODER)
    assert stats("model.pretrained=true") == ([0.5] * 3, [0.25] * 3, "dataset.mean/std")
    mean, std, source = stats("model.pretrained=true", *null)
    assert (mean, std) == (list(pretrained.mean), list(pretrained.std))
    assert source.startswith(f"the pretrained config of model.encoder={ENCODER}")
    assert stats(*null) == ([0.5] * 3, [0.25] * 3, "the generic default (dataset.mean/std null)")
    mean, std, _ = stats("model.pretrained=true", *null, "dataset.in_channels=1")
    assert mean == [pytest.approx(sum(pretrained.mean) / 3)]


@pytest.mark.slow
def test_training_writes_the_resolved_normalisation_into_the_checkpoint(offline, tmp_path, capsys):
    hub_cache(offline, ENCODER, random_weights())
    base = [o for o in tiny_overrides(tmp_path, objects=4) if not o.startswith("model.")]
    overrides = [
        *base, "model=unet_timm", f"model.encoder={ENCODER}", "model.pretrained=true",
        "model.decoder_channels=[8,8,8,8,8]", "dataset.mean=null", "dataset.std=null",
        "trainer.epochs=1", "trainer.max_steps_per_epoch=1",
    ]  # fmt: skip
    run_command("train", overrides, tmp_path / "run")
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    config = OmegaConf.create(saved["config"])
    assert list(config.dataset.mean) == list(timm.get_pretrained_cfg(ENCODER).mean)
    assert config.model.pretrained is True  # the record is kept; restoring never reads it
    assert f"from the pretrained config of model.encoder={ENCODER}" in capsys.readouterr().out


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoder", "message"),
    [
        ("resnet_18", r"model.encoder=resnet_18 is not a timm model \(did you mean resnet18"),
        ("test_vit", "takes one fixed input size"),
        ("resnet18.no_such_tag", "Its pretrained tags are: resnet18.a1_in1k"),
    ],
)
def test_encoders_that_cannot_serve_are_one_paragraph(encoder, message):
    with pytest.raises(UnetError, match=message):
        UNetTimm(3, 1, encoder)


def test_a_weight_file_of_another_network_is_refused(tmp_path):
    save_file(random_weights("test_efficientnet"), str(tmp_path / "other.safetensors"))
    with pytest.raises(UnetError, match=r"model.pretrained=.*other.safetensors"):
        UNetTimm(3, 1, ENCODER, str(tmp_path / "other.safetensors"), TINY)
    with pytest.raises(UnetError, match="does not exist"):
        UNetTimm(3, 1, ENCODER, str(tmp_path / "missing.pth"), TINY)


def test_without_timm_the_message_gives_the_install_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # what `import timm` meets uninstalled
    with pytest.raises(UnetError, match=r'pip install "unetcli\[encoders\]"'):
        UNetTimm(3, 1, ENCODER)


@pytest.mark.slow
def test_a_backbone_whose_graph_keeps_its_traced_size_is_refused_by_export(tmp_path):
    base = [o for o in tiny_overrides(tmp_path, objects=4) if not o.startswith("model.")]
    encoder = ["model=unet_timm", "model.encoder=mobilevit_xxs", f"model.decoder_channels={TINY}"]
    cfg = compose("train", [*base, *encoder])
    build_layout(cfg.dataset)
    cfg.paths.run_dir = str(tmp_path / "run")
    state = {"model": build_model(cfg.model).state_dict(), "epoch": 0, "metrics": {}}
    state["config"] = OmegaConf.to_container(cfg, resolve=True)
    save_checkpoint(state, tmp_path / "best.pt")
    args = [f"checkpoint={tmp_path / 'best.pt'}", "export.format=none", "export.verify_images=1"]
    with pytest.raises(UnetError, match=r"model.encoder=mobilevit_xxs\) cannot be exported"):
        run_command("export", args, tmp_path / "export")
