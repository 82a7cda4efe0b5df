"""Small image sets whose values are measurements, written as a user's microscope or scanner
would: 16-bit multi-page TIFFs, one 16-bit file per band, float32 CT slices.

Every set is seeded and tiny (32 px), so a few epochs on the CPU learn it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tifffile

SIDE = 32


def _disk(rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    """A filled ellipse at a random place, as a 0/1 uint8 mask."""
    mask = np.zeros((side, side), np.uint8)
    centre = tuple(int(v) for v in rng.integers(9, side - 9, 2))
    axes = tuple(int(v) for v in rng.integers(4, 8, 2))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask


def _folders(root: Path, *names: str) -> None:
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)


def bright_and_dim(root: Path, count: int = 32, seed: int = 0) -> Path:
    """2-channel 16-bit TIFFs (planar pages): one disk per image, twice as bright as its
    background, the second channel the first at 4x the gain.

    Images differ by their exposure only: the disk is the object where the exposure is high
    (disk about 3000 counts) and not where it is low (about 1800; the mask is empty). Every
    image is its pattern times its exposure (noise included), so stretched per image from
    its minimum to its maximum a bright and a dim image are the same picture: only the
    absolute values tell them apart.
    """
    rng = np.random.default_rng(seed)
    _folders(root, "images", "masks")
    for i in range(count):
        disk = _disk(rng)
        bright = i % 2 == 0
        exposure = rng.uniform(1400, 1700) if bright else rng.uniform(800, 1000)
        pattern = (1.0 + disk) * (1 + rng.normal(0, 0.03, disk.shape))
        planes = np.stack([exposure * pattern, 4 * exposure * pattern])
        tifffile.imwrite(
            root / "images" / f"c{i:03d}.tif",
            planes.clip(0, 65535).astype(np.uint16),
            photometric="minisblack",
        )
        cv2.imwrite(str(root / "masks" / f"c{i:03d}.png"), disk * 255 * bright)
    return root


BANDS = ["b1", "b2", "b3", "b4", "b5"]


def five_bands(root: Path, count: int = 24, tests: int = 3, seed: int = 1) -> Path:
    """One 16-bit single-channel TIFF per band and image (root/<band>/<stem>.tif), with
    test/<band>/ for predict. The object shows in band 4 (a near-infrared response) over
    bands of different gains, lit differently from tile to tile; the others carry noise and
    a gradient."""
    rng = np.random.default_rng(seed)
    _folders(root, "masks", *BANDS, *[f"test/{b}" for b in BANDS])
    ramp = np.linspace(0, 1, SIDE)[None, :]
    for i in range(count + tests):
        disk = _disk(rng)
        folder = root if i < count else root / "test"
        light = rng.uniform(0.5, 1.5)  # the sun's angle: every band of a tile at once
        for k, band in enumerate(BANDS):
            gain = 500.0 * (k + 1) * light
            plane = gain * (1 + ramp) + rng.normal(0, 0.05 * gain, disk.shape)
            if band == "b4":
                plane = plane + disk * rng.uniform(3, 4) * gain
            plane = plane.clip(0, 65535).astype(np.uint16)
            tifffile.imwrite(folder / band / f"t{i:03d}.tif", plane)
        if i < count:
            cv2.imwrite(str(root / "masks" / f"t{i:03d}.png"), disk * 255)
    return root


def ct_slices(root: Path, count: int = 40, seed: int = 2) -> Path:
    """float32 TIFFs in Hounsfield units: air (-1000) around a body (about -80), a rib of
    bone (about 800) and a contrast-filled organ (about 250, the object). Every slice spans
    air to bone, as CT does, so one fixed range reads them all."""
    rng = np.random.default_rng(seed)
    _folders(root, "images", "masks")
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    for i in range(count):
        body = ((x - 16) / 14.0) ** 2 + ((y - 16) / 12.0) ** 2 < 1
        rib = np.abs(np.hypot(x - 16, y - 16) - 11) < 1.2
        organ = _disk(rng).astype(bool) & body & ~rib
        values = np.where(body, rng.normal(-80, 15, body.shape), -1000.0)
        values = np.where(rib & body, rng.uniform(700, 900), values)
        values = np.where(organ, rng.normal(250, 10, body.shape) + rng.uniform(-20, 20), values)
        values = values + rng.normal(0, 5, body.shape)
        tifffile.imwrite(root / "images" / f"s{i:03d}.tif", values.astype(np.float32))
        cv2.imwrite(str(root / "masks" / f"s{i:03d}.png"), organ.astype(np.uint8) * 255)
    return root
