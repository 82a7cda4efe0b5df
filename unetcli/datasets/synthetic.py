"""The embedded dataset: deterministic synthetic "cars" in Carvana's on-disk layout.

Each object has a fixed shape, colour and texture and is seen in several views
(rotated, scaled, moved) on textured, noisy backgrounds with distractor strokes,
so colour alone does not separate it: a model has to learn shape and texture.
Generated from the seed into a temporary folder and renamed into place, so an
interrupted generation never leaves a half-made dataset behind.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from unetcli.datasets.carvana import CarvanaLayout
from unetcli.errors import UnetError

MANIFEST = "synthetic.json"


class SyntheticLayout(CarvanaLayout):
    """Carvana layout plus `test_masks/`; generated on first use."""

    def __init__(
        self,
        root: str | Path,
        seed: int = 42,
        num_objects: int = 100,
        views: int = 4,
        num_test: int = 48,
        height: int = 96,
        width: int = 128,
    ) -> None:
        super().__init__(root)
        self.params = {
            "seed": int(seed),
            "num_objects": int(num_objects),
            "views": int(views),
            "num_test": int(num_test),
            "height": int(height),
            "width": int(width),
        }

    def prepare(self) -> None:
        if not (self.root / MANIFEST).is_file():
            if self.root.exists() and any(self.root.iterdir()):
                raise UnetError(
                    f"{self.root} exists but holds no {MANIFEST}, so it is not a complete "
                    "synthetic dataset; unetcli will not overwrite it. Move it away, or set "
                    "paths.data_dir=... (or dataset.root=...) to another folder."
                )
            generate(self.root, **self.params)
        self._check_manifest()

    def _check_manifest(self) -> None:
        """A folder holds the set of one generator setting: training on another set than the
        config names would make a run's result depend on what an earlier run left. Settings
        the manifest does not record are not compared."""
        try:
            found = json.loads((self.root / MANIFEST).read_text())
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise UnetError(
                f"{self.root / MANIFEST} is not the JSON object unetcli writes, so which set "
                f"{self.root} holds is unknown. Delete {self.root} to generate the set anew, or "
                "set dataset.root=... (or paths.data_dir=...) to another folder."
            )
        differ = sorted(k for k in self.params if k in found and found[k] != self.params[k])
        if differ:
            has = ", ".join(f"{k}={found[k]}" for k in differ)
            asked = ", ".join(f"dataset.layout.{k}={self.params[k]}" for k in differ)
            raise UnetError(
                f"{self.root} holds the synthetic set generated with {has} ({MANIFEST}), but "
                f"this run asks for {asked}. A folder holds one set: set dataset.root=... (or "
                f"paths.data_dir=...) to another folder for these settings, or delete "
                f"{self.root} to generate it anew."
            )


def generate(root: Path, **params: int) -> None:
    """Write the synthetic dataset into `root` (which must not hold anything)."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # our own leftover from this pid, never user data
    for folder in ("train", "train_masks", "test", "test_masks"):
        (tmp / folder).mkdir(parents=True)
    rng = np.random.default_rng(params["seed"])
    height, width = params["height"], params["width"]
    n_train, views = params["num_objects"], params["views"]
    ids = _unique_ids(rng, n_train + params["num_test"])

    for i in range(n_train):
        obj = _random_object(rng)
        for view in range(1, views + 1):
            stem = f"{ids[i]}_{view:02d}"
            image, mask = _render(rng, obj, height, width)
            _write_pair(tmp, "train", stem, image, mask)
    test_names = []
    for i in range(n_train, n_train + params["num_test"]):
        stem = f"{ids[i]}_01"
        image, mask = _render(rng, _random_object(rng), height, width)
        _write_pair(tmp, "test", stem, image, mask)
        test_names.append(f"{stem}.jpg")
    # Kaggle's sample submission fixes the row order; shuffle it so that code
    # relying on sorted file names instead would be caught.
    with (tmp / "sample_submission.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["img", "rle_mask"])
        for name in rng.permutation(test_names):
            writer.writerow([name, "1 1"])
    (tmp / MANIFEST).write_text(json.dumps(params, indent=2) + "\n")
    _move_into_place(tmp, root)


def _move_into_place(tmp: Path, root: Path) -> None:
    """Rename `tmp` to `root`, unless a parallel process (a sweep job) got there first.

    The one already in place is kept; the caller then checks that its settings are these.
    """
    try:
        if root.exists() and not (root / MANIFEST).is_file():
            root.rmdir()  # empty (checked by the caller); rename needs the name free
        if not root.exists():
            os.replace(tmp, root)
            return
    except OSError:
        if not (root / MANIFEST).is_file():
            raise
    shutil.rmtree(tmp, ignore_errors=True)


def _unique_ids(rng: np.random.Generator, n: int) -> list[str]:
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        value = "".join(rng.choice(list("0123456789abcdef"), 12))
        if value not in seen:
            seen.add(value)
            ids.append(value)
    return ids


def _random_object(rng: np.random.Generator) -> dict:
    """A shape outline (unit radius), a colour and a texture that stay fixed across views."""
    kind = rng.choice(["ellipse", "polygon", "star", "blob"])
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    if kind == "ellipse":
        ratio = rng.uniform(0.45, 1.0)
        outline = np.stack([np.cos(angles), ratio * np.sin(angles)], 1)
    elif kind == "polygon":
        k = int(rng.integers(3, 8))
        a = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(0.7, 1.0, k)
        outline = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    elif kind == "star":
        k = int(rng.integers(4, 8))
        a = np.linspace(0, 2 * np.pi, 2 * k, endpoint=False)
        r = np.where(np.arange(2 * k) % 2 == 0, 1.0, rng.uniform(0.45, 0.7))
        outline = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    else:
        coeffs = rng.normal(0, 0.12, (3, 2))
        r = 0.75 + sum(
            c[0] * np.cos((j + 2) * angles) + c[1] * np.sin((j + 2) * angles)
            for j, c in enumerate(coeffs)
        )
        outline = np.stack([r * np.cos(angles), r * np.sin(angles)], 1)
    return {
        "outline": outline,
        "size": rng.uniform(0.22, 0.4),
        "colour": rng.uniform(20, 235, 3),
        "texture": rng.choice(["stripes", "checker", "spots", "plain"]),
        "period": rng.uniform(4, 10),
        "texture_angle": rng.uniform(0, np.pi),
    }


def _pattern(kind: str, period: float, angle: float, h: int, w: int, rng) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    if kind == "checker":
        return ((np.floor(x / period) + np.floor(y / period)) % 2).astype(np.float32)
    if kind == "spots":
        return (np.sin(2 * np.pi * x / period) * np.sin(2 * np.pi * y / period) > 0.5).astype(
            np.float32
        )
    return np.full((h, w), 0.5, np.float32)


def _background(rng: np.random.Generator, h: int, w: int, avoid: np.ndarray) -> np.ndarray:
    # Background colours keep a distance from the object's colour in this image
    # (colours still overlap across images, so no fixed threshold separates them).
    while True:
        c0, c1 = rng.uniform(0, 255, (2, 3))
        if min(np.linalg.norm(c0 - avoid), np.linalg.norm(c1 - avoid)) > 100:
            break
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    if rng.random() < 0.5:
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    image = c0 * (1 - t) + c1 * t + np.zeros((h, w, 3), np.float32)
    low = cv2.resize(rng.normal(0, 30, (6, 8, 3)).astype(np.float32), (w, h))
    texture = _pattern(
        str(rng.choice(["stripes", "checker", "plain"])),
        rng.uniform(6, 20),
        rng.uniform(0, np.pi),
        h,
        w,
        rng,
    )
    image = image + low + 25 * (texture[..., None] - 0.5)
    for _ in range(int(rng.integers(2, 6))):  # distractor strokes, not objects
        p1 = tuple(int(v) for v in rng.uniform(0, [w, h]))
        p2 = tuple(int(v) for v in rng.uniform(0, [w, h]))
        cv2.line(image, p1, p2, rng.uniform(0, 255, 3).tolist(), int(rng.integers(1, 4)))
    return image


def _render(rng: np.random.Generator, obj: dict, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    colour = obj["colour"] * rng.uniform(0.85, 1.15)
    image = _background(rng, h, w, colour)
    angle = rng.uniform(0, 2 * np.pi)
    scale = obj["size"] * min(h, w) * rng.uniform(0.85, 1.15) * 1.4
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = rng.uniform([0.3 * w, 0.3 * h], [0.7 * w, 0.7 * h])
    points = (obj["outline"] @ rot.T) * scale + centre
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    pattern = _pattern(obj["texture"], obj["period"], obj["texture_angle"] + angle, h, w, rng)
    fill = colour[None, None, :] * (0.75 + 0.5 * pattern[..., None])
    image = np.where(mask[..., None] > 0, fill, image)
    # A darker rim, like the silhouette edge of a photographed car.
    cv2.polylines(image, [np.round(points).astype(np.int32)], True, (colour * 0.45).tolist(), 1)
    image = cv2.GaussianBlur(image, (3, 3), 0.8)
    image = image + rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def _write_pair(root: Path, split: str, stem: str, image: np.ndarray, mask: np.ndarray) -> None:
    cv2.imwrite(str(root / split / f"{stem}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    gif = Image.fromarray(mask, mode="P")
    gif.putpalette([0, 0, 0, 255, 255, 255])
    gif.save(root / f"{split}_masks" / f"{stem}_mask.gif")
