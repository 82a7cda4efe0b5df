"""inference.json: everything the runner needs to reproduce `unet predict`, read and checked."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from unetcli.core.task import Task
from unetcli.errors import UnetError

INFO_NAME = "inference.json"
FORMAT = 1


@dataclass(frozen=True)
class InferenceInfo:
    """The exported model's contract (geometry, task) and how predict covered images."""

    channels: int
    input_multiple: int
    output_margin: int
    min_input_size: int
    tile_size: int | None
    task: Task
    mode: str
    image_size: tuple[int, int] | None
    window: tuple[int, int] | None
    overlap: float
    tta: tuple[str, ...]
    threshold: float
    min_object_size: int
    fill_holes: bool
    # The dtype the graph takes (older files: uint8), and the channel folders of images
    # stored one file per channel (null: one file per image).
    dtype: str = "uint8"
    channel_folders: tuple[str, ...] | None = None

    def valid_input_size(self, size: int) -> int:
        """The smallest side >= size the graph takes (valid-convolution tiles: min + k * step)."""
        size = max(int(size), self.min_input_size)
        base = self.min_input_size if self.output_margin > 0 else 0
        return base + math.ceil((size - base) / self.input_multiple) * self.input_multiple

    @classmethod
    def from_dict(cls, data: dict) -> InferenceInfo:
        geometry, task, predict = data["geometry"], data["task"], data["predict"]
        pair = data["training"]["image_size"]
        return cls(
            channels=int(data["input"]["channels"]),
            input_multiple=int(geometry["size_multiple"]),
            output_margin=int(geometry["output_margin"]),
            min_input_size=int(geometry["min_input_size"]),
            tile_size=geometry["tile_size"],
            task=Task(task["kind"], task["num_classes"], task["ignore_index"]),
            mode=str(predict["mode"]),
            image_size=tuple(pair) if pair else None,
            window=tuple(predict["window"]) if predict["window"] else None,
            overlap=float(predict["overlap"]),
            tta=tuple(predict["tta"]),
            threshold=float(predict["threshold"]),
            min_object_size=int(predict["min_object_size"]),
            fill_holes=bool(
                predict.get("fill_holes", False)
            ),  # absent in older inference.json files
            dtype=str(data["input"].get("dtype", "uint8")),
            channel_folders=tuple(data["input"].get("channel_folders") or ()) or None,
        )


def read_info(model_path: Path) -> InferenceInfo:
    """The inference.json beside `model_path`, or one clear paragraph on what is wrong."""
    path = Path(model_path).with_name(INFO_NAME)
    if not path.is_file():
        raise UnetError(
            f"{path} is missing: the runner reads how to predict (size, mode, threshold, task) "
            f"from the inference.json that `unet export` writes beside {Path(model_path).name}. "
            "Keep the two files together."
        )
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, this runner reads {FORMAT}")
        return InferenceInfo.from_dict(data)
    except (ValueError, KeyError, TypeError) as err:
        raise UnetError(
            f"{path} cannot be read ({err!r}); it is damaged or from another version. Export "
            "the checkpoint again with `unet export checkpoint=PATH`."
        ) from err
