"""Images as measurements: TIFF stacks, N-channel files and the dtypes they keep.

An 8-bit photograph is read as RGB or grey, as OpenCV reads it (unetcli.core.images). Other
images are measurements: a 16-bit fluorescence stack, a 13-band satellite tile, a CT slice in
Hounsfield units. Their values mean the same thing in every image, so they are read as they
are stored: TIFFs through tifffile (single or multi-page, planar or interleaved, 8/16/32-bit
integer or float), every plane that is not height or width becoming a channel, and the dtype
kept as one of uint8, uint16 or float32 until the normalisation (unetcli.core.normalisation)
turns them into model input. Other integer and float types become float32 (exact for 16-bit
signed values such as Hounsfield units).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unetcli.errors import UnetError

TIFF_EXTENSIONS = (".tif", ".tiff")
#: The dtypes images keep from the reader to the normalisation (and the exported graph takes).
KEPT_DTYPES = ("uint8", "uint16", "float32")


def is_tiff(path: str | Path) -> bool:
    return Path(path).suffix.lower() in TIFF_EXTENSIONS


def kept_dtype(image: np.ndarray) -> np.ndarray:
    """The image as uint8, uint16 or float32: other types become float32, values unchanged."""
    if image.dtype == np.bool_:
        return image.astype(np.uint8)
    if image.dtype.name in KEPT_DTYPES:
        return image
    return image.astype(np.float32)


def read_tiff(path: str | Path) -> np.ndarray:
    """A TIFF as (H, W, C): every axis but height and width becomes a channel, and pages
    saved one by one (each its own series, of one size) are stacked as channels."""
    import tifffile

    try:
        with tifffile.TiffFile(str(path)) as tif:
            found = [(s.asarray(), s.axes) for s in tif.series]
    except Exception as err:  # tifffile raises its own and numpy's types for damaged files
        # A compression tifffile has no codec for here (LZW, JPEG without imagecodecs):
        # OpenCV's libtiff decodes those.
        pages = _opencv_pages(path)
        if pages is not None:
            return pages
        raise UnetError(
            f"cannot read image {path}: tifffile cannot decode it ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:120] if str(err) else ''}). Replace or remove it."
        ) from err
    planes = [_hwc(data, axes, path) for data, axes in found]
    if len({p.shape[:2] for p in planes}) > 1:
        planes = planes[:1]  # a pyramid or thumbnails after the image: the image alone
    return kept_dtype(np.ascontiguousarray(np.concatenate(planes, axis=2)))


def _hwc(data: np.ndarray, axes: str, path: str | Path) -> np.ndarray:
    """A series' array as (H, W, C), its axes other than Y and X flattened into channels."""
    if "Y" not in axes or "X" not in axes:
        raise UnetError(
            f"image {path} has axes {axes!r}, without height and width (Y, X); it is not a 2D "
            "image. Save each 2D plane as its own file."
        )
    order = [axes.index("Y"), axes.index("X")]
    rest = [i for i in range(data.ndim) if i not in order]
    height, width = data.shape[order[0]], data.shape[order[1]]
    return data.transpose(order + rest).reshape(height, width, -1)


def _opencv_pages(path: str | Path) -> np.ndarray | None:
    """A TIFF's pages decoded by OpenCV, stacked as channels (colour pages in RGB order)."""
    ok, pages = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
    if not ok or not pages or len({p.shape[:2] for p in pages}) > 1:
        return None
    planes = []
    for page in pages:
        if page.ndim == 2:
            page = page[..., None]
        elif page.shape[2] in (3, 4):
            page = cv2.cvtColor(
                page, cv2.COLOR_BGR2RGB if page.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
            )
        planes.append(page)
    return kept_dtype(np.concatenate(planes, axis=2))


def read_native(path: str | Path) -> np.ndarray:
    """Any image file as (H, W, C) in its own channels and dtype (colour files in RGB order)."""
    if is_tiff(path):
        return read_tiff(path)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UnetError(
            f"cannot read image {path}: the file is missing, empty or not an image OpenCV "
            "can decode. Replace or remove it."
        )
    if image.ndim == 2:
        image = image[..., None]
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return kept_dtype(image)


def fits(stored: int, channels: int) -> bool:
    """Whether an image of `stored` channels is read as `channels` (exact, or RGB/grey/alpha)."""
    return stored == channels or (channels, stored) in {(3, 1), (3, 4), (1, 3), (1, 4)}


def fit_channels(image: np.ndarray, channels: int, path: str | Path) -> np.ndarray:
    """(H, W, channels): exact, grey replicated to RGB, RGB to grey, an alpha channel dropped.

    Nothing else is guessed: a 2-channel stack is never silently turned into 3 channels.
    """
    stored = image.shape[2]
    if stored == channels:
        return image
    if not fits(stored, channels):
        raise UnetError(
            f"image {path} has {stored} channel(s) but dataset.in_channels is {channels}. Set "
            f"dataset.in_channels={stored} if every image has {stored}, or convert this file."
        )
    if channels == 3 and stored == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 3:
        return np.ascontiguousarray(image[..., :3])
    grey = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    return grey[..., None]


def read_channels(path: str | Path, channels: int) -> np.ndarray:
    """An image as (H, W, channels) in its kept dtype (see `fit_channels`)."""
    return fit_channels(read_native(path), channels, path)


def header(path: str | Path) -> tuple[int, int, int, str] | None:
    """(height, width, channels, dtype) of an image as the reader returns it, from its header
    where the format allows (TIFF, PNG), else from a decode; None if it cannot be read."""
    try:
        if is_tiff(path):
            return _tiff_header(path)
        if Path(path).suffix.lower() == ".png":
            return _png_header(path)
        found = _pillow_header(path)
        if found is not None:
            return found
        image = read_native(path)
    except (UnetError, OSError, ValueError):
        return None
    return image.shape[0], image.shape[1], image.shape[2], image.dtype.name


#: Pillow modes of the formats that are neither TIFF nor PNG: (channels, dtype) as read.
_PILLOW_MODES = {
    "1": (1, "uint8"), "L": (1, "uint8"), "P": (3, "uint8"), "RGB": (3, "uint8"),
    "RGBA": (4, "uint8"), "CMYK": (3, "uint8"), "I;16": (1, "uint16"), "F": (1, "float32"),
}  # fmt: skip


def _pillow_header(path: str | Path) -> tuple[int, int, int, str] | None:
    """From the header Pillow parses (JPEG, BMP, GIF), or None for a mode it cannot map."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode, (width, height) = image.mode, image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if mode not in _PILLOW_MODES:
        return None
    return (height, width, *_PILLOW_MODES[mode])


def _tiff_header(path: str | Path) -> tuple[int, int, int, str]:
    import tifffile

    try:
        with tifffile.TiffFile(str(path)) as tif:
            found = [(s.shape, s.axes, np.dtype(s.dtype)) for s in tif.series]
    except Exception as err:  # damaged file: as unreadable
        raise ValueError(str(err)) from err
    sizes, channels = [], 0
    for shape, axes, _ in found:
        if "Y" not in axes or "X" not in axes:
            raise ValueError(f"axes {axes}")
        sizes.append((shape[axes.index("Y")], shape[axes.index("X")]))
        channels += int(np.prod([n for a, n in zip(axes, shape) if a not in "YX"], dtype=np.int64))
    if len(set(sizes)) > 1:  # as read_tiff: the first series alone
        shape, axes, _ = found[0]
        channels = int(np.prod([n for a, n in zip(axes, shape) if a not in "YX"], dtype=np.int64))
    kept = kept_dtype(np.zeros(0, found[0][2])).dtype.name
    return sizes[0][0], sizes[0][1], channels, kept


_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


def _png_header(path: str | Path) -> tuple[int, int, int, str]:
    """From the IHDR chunk: 16-bit colour PNGs are told apart, which Pillow's mode does not."""
    with open(path, "rb") as f:
        head = f.read(29)
    if len(head) < 29 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    depth, colour = head[24], head[25]
    if colour not in _PNG_CHANNELS:
        raise ValueError(f"PNG colour type {colour}")
    channels = _PNG_CHANNELS[colour]
    if colour == 4:  # OpenCV reads grey + alpha as BGRA
        channels = 4
    return height, width, channels, "uint16" if depth == 16 else "uint8"


def stack_planes(planes: list[np.ndarray], name: str) -> np.ndarray:
    """One image from its channel files' planes (H, W, 1) each, in channel order."""
    shapes = sorted({p.shape[:2] for p in planes})
    if len(shapes) > 1:
        raise UnetError(
            f"the channel files of image {name} differ in size ({shapes}); every channel of an "
            "image must have its size"
        )
    dtypes = sorted({p.dtype.name for p in planes})
    if len(dtypes) > 1:
        raise UnetError(
            f"the channel files of image {name} differ in dtype ({', '.join(dtypes)}); save "
            "every channel with the same bit depth"
        )
    return np.concatenate(planes, axis=2)
