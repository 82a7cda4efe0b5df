"""The 2015 U-Net paper's pixel weight map, and a cache that computes it once per mask.

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

w_c balances the class frequencies; d1 and d2 are the distances from pixel x
to the nearest and the second-nearest object. The second term makes the thin
background gaps between touching objects weigh up to w0 + w_c, so the network
learns to separate them. The paper precomputes the map for each ground-truth
mask; here it is computed once per mask and kept (see WeightMapCache).

Definitions used (the paper leaves them open):
- objects are the connected components (4-connectivity by default) of each
  foreground class (mask value > 0); distances are exact Euclidean distances in
  pixels to the object's nearest pixel (OpenCV's precise distance transform);
- the border term needs at least two objects and is added on background
  pixels only (`border_on="background"`: inside an object d1 is 0 and the gap
  is what matters), or on every pixel with `border_on="all"`;
- w_c is "balanced" by default: w_c(k) = n_pixels / (n_classes_present * n_k),
  so that the class weights average to 1 over the mask (scikit-learn's
  'balanced' rule); a list gives fixed weights per class (background first),
  and None gives 1 everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from unetcli.errors import UnetError

BORDER_ON = ("background", "all")
ClassWeights = str | Sequence[float] | None


def check_options(class_weights: ClassWeights, border_on: str) -> None:
    """Refuse option values the map does not know, naming the loss key."""
    if isinstance(class_weights, str) and class_weights != "balanced":
        raise UnetError(
            f"loss.class_weights must be 'balanced', a list or null, not {class_weights!r}"
        )
    if border_on not in BORDER_ON:
        raise UnetError(f"loss.border_on must be 'background' or 'all', not {border_on!r}")


def class_weight_map(mask: np.ndarray, class_weights: ClassWeights = "balanced") -> np.ndarray:
    """w_c(x) for each pixel of a (H, W) mask of class indices, float32."""
    mask = np.asarray(mask)
    if class_weights is None:
        return np.ones(mask.shape, np.float32)
    values, counts = np.unique(mask, return_counts=True)
    check_options(class_weights, "background")
    if isinstance(class_weights, str):
        table = {v: mask.size / (len(values) * c) for v, c in zip(values, counts)}
    else:
        weights = list(class_weights)
        if values.max() >= len(weights):
            raise UnetError(
                f"loss.class_weights has {len(weights)} values but the mask holds class "
                f"{int(values.max())}; give one weight per class, background first"
            )
        table = {v: weights[int(v)] for v in values}
    out = np.empty(mask.shape, np.float32)
    for value, weight in table.items():
        out[mask == value] = weight
    return out


def object_distances(mask: np.ndarray, connectivity: int = 4) -> tuple[np.ndarray, np.ndarray, int]:
    """(d1, d2, number of objects): distances to the nearest and second-nearest object."""
    mask = np.asarray(mask)
    inf = np.float32(np.inf)
    d1 = np.full(mask.shape, inf, np.float32)
    d2 = np.full(mask.shape, inf, np.float32)
    count = 0
    for value in np.unique(mask):
        if value == 0:
            continue
        n, labels = cv2.connectedComponents(
            (mask == value).astype(np.uint8), connectivity=connectivity
        )
        for label in range(1, n):
            # Distance to the nearest zero pixel of `outside`, i.e. to this object.
            outside = (labels != label).astype(np.uint8)
            d = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            d2 = np.minimum(d2, np.maximum(d1, d))
            d1 = np.minimum(d1, d)
            count += 1
    return d1, d2, count


def border_weight_map(
    mask: np.ndarray,
    w0: float = 10.0,
    sigma: float = 5.0,
    border_on: str = "background",
    connectivity: int = 4,
) -> np.ndarray:
    """w0 * exp(-(d1 + d2)^2 / (2 sigma^2)), zero with fewer than two objects."""
    check_options(None, border_on)
    mask = np.asarray(mask)
    d1, d2, count = object_distances(mask, connectivity)
    if count < 2:
        return np.zeros(mask.shape, np.float32)
    out = (w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))).astype(np.float32)
    if border_on == "background":
        out[mask != 0] = 0
    return out


def unet_weight_map(
    mask: np.ndarray,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: ClassWeights = "balanced",
    border_on: str = "background",
    connectivity: int = 4,
) -> np.ndarray:
    """The paper's weight map w(x) = w_c(x) + border term, float32 of the mask's shape."""
    return class_weight_map(mask, class_weights) + border_weight_map(
        mask, w0, sigma, border_on, connectivity
    )


class WeightMapCache:
    """Weight maps of a dataset's masks, each computed once and kept in memory.

    `size` is the (height, width) the images are trained at (the dataset's
    resize): the map is computed at that size, so sigma and the distances are
    in training pixels, and returned at the mask's own size, ready to go
    through the same albumentations pipeline as the mask (whose resize brings
    it back). Maps are kept as float32 at the training size (4 bytes per
    pixel per mask); each DataLoader worker holds its own cache.
    """

    def __init__(
        self, compute: Callable[[np.ndarray], np.ndarray], size: tuple[int, int] | None = None
    ) -> None:
        self.compute = compute
        self.size = size
        self._maps: dict[object, np.ndarray] = {}

    def __call__(self, key: object, mask: np.ndarray) -> np.ndarray:
        small = self._maps.get(key)
        if small is None:
            work = mask
            if self.size is not None and mask.shape[:2] != tuple(self.size):
                height, width = self.size
                work = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
            small = self.compute(work).astype(np.float32)
            self._maps[key] = small
        out = small
        if out.shape != mask.shape[:2]:
            height, width = mask.shape[:2]
            out = cv2.resize(out, (width, height), interpolation=cv2.INTER_NEAREST)
        return out

    def __len__(self) -> int:
        return len(self._maps)
