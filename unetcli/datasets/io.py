"""Reading images and masks from disk: kept in unetcli.image_io, outside this package, so that
the torch-free runner (unetcli.runtime) reads images exactly as training did without importing
the dataset layouts (and their PIL and tqdm)."""

from unetcli.image_io import IMAGE_EXTENSIONS, list_images, read_image, read_mask

__all__ = ["IMAGE_EXTENSIONS", "list_images", "read_image", "read_mask"]
