"""RGB label images decoded through a class table (`name,r,g,b` rows, one per class).

The row order is the class index, so a table with more rows becomes a
multi-class task without code changes (Massachusetts Buildings ships
`label_class_dict.csv` with background 0,0,0 and building 255,255,255).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from unetcli.errors import UnetError


@dataclass(frozen=True)
class ClassTable:
    names: list[str]
    colours: list[tuple[int, int, int]]

    @classmethod
    def read(cls, path: Path) -> ClassTable:
        """Read a `name,r,g,b` CSV (header names in any case, extra columns ignored)."""
        if not path.is_file():
            raise UnetError(
                f"class table {path} does not exist; it must list one `name,r,g,b` row per "
                "class (row order = class index)"
            )
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
            fields = {k.strip().lower(): k for k in (rows[0].keys() if rows else [])}
            names = [row[fields["name"]].strip() for row in rows]
            colours = [tuple(int(row[fields[c]]) for c in "rgb") for row in rows]
        except (KeyError, ValueError, TypeError) as err:
            raise UnetError(
                f"class table {path} cannot be read ({err!r}); it needs a header `name,r,g,b` "
                "and one row per class with integer colour values 0-255"
            ) from err
        if len(rows) < 2 or len(set(colours)) != len(colours):
            raise UnetError(
                f"class table {path} must list at least two classes with distinct colours; "
                f"it lists {len(rows)} row(s)"
            )
        return cls(names, colours)

    def check_classes(self, num_classes: int, path: Path) -> None:
        """A 2-row table is a binary task (num_classes 1 or 2); K rows need num_classes K."""
        expected = len(self.colours)
        if num_classes == expected or (num_classes == 1 and expected == 2):
            return
        hint = "1 (binary) or 2" if expected == 2 else str(expected)
        raise UnetError(
            f"class table {path} lists {expected} classes ({', '.join(self.names)}) but "
            f"dataset.num_classes is {num_classes}; set dataset.num_classes={hint}"
        )

    @property
    def _keys(self) -> np.ndarray:
        return np.array([(r << 16) | (g << 8) | b for r, g, b in self.colours], np.int64)

    def decode(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class indices uint8, mask of pixels whose colour is in the table)."""
        keys = packed(rgb)
        table = self._keys
        order = np.argsort(table)
        sorted_keys = table[order]
        pos = np.clip(np.searchsorted(sorted_keys, keys), 0, len(table) - 1)
        known = sorted_keys[pos] == keys
        return order[pos].astype(np.uint8), known

    def unknown_colours(self, rgb: np.ndarray) -> list[tuple[int, int, int]]:
        """Colours present in `rgb` that the table does not list."""
        keys = packed(rgb)
        unknown = np.unique(keys[~np.isin(keys, self._keys)])
        return [(int(k >> 16), int((k >> 8) & 255), int(k & 255)) for k in unknown]


def packed(rgb: np.ndarray) -> np.ndarray:
    """One int per pixel, r<<16 | g<<8 | b, for table lookups."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def read_rgb_mask(path: str | Path) -> np.ndarray:
    """Read a label image as uint8 RGB (H, W, 3); grey labels become three equal channels."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UnetError(
            f"cannot read mask {path}: the file is missing, empty or not an image OpenCV "
            "can decode. Replace or remove it."
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
