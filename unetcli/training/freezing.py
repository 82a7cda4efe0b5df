"""trainer.freeze_encoder_epochs: the encoder is left as it is for the first N epochs.

While frozen, its parameters take no gradient (the optimizer skips them, so not even weight
decay moves them) and its normalisation layers run in eval mode, so their running
statistics stay the pretrained ones too: the random decoder first learns to read the
encoder's features, then the whole network is fine-tuned. The state follows from the
epoch number alone, so a resumed run freezes exactly as the uninterrupted one.
"""

from __future__ import annotations

from torch import nn

from unetcli.training.param_groups import encoder_of


class EncoderFreeze:
    """Freezes `model.encoder` in epochs 1..`epochs` (0: never)."""

    def __init__(self, model: nn.Module, epochs: int | None) -> None:
        self.epochs = int(epochs or 0)
        key = "trainer.freeze_encoder_epochs"
        self.encoder = encoder_of(model, key) if self.epochs > 0 else None
        self.frozen = False

    def apply(self, epoch: int) -> bool:
        """Set the encoder up for `epoch` (call after model.train()); True when the set of
        trainable parameters changed, so whatever holds that set (DDP) is rebuilt."""
        if self.encoder is None:
            return False
        frozen = epoch <= self.epochs
        if frozen:
            self.encoder.eval()  # batch-norm statistics (and dropout) as in inference
        if frozen == self.frozen:
            return False
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(not frozen)
        self.frozen = frozen
        return True

    def describe(self) -> str | None:
        if not self.epochs:
            return None
        return f"encoder frozen (weights and batch-norm statistics) for epochs 1-{self.epochs}"
