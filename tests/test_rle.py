import numpy as np
import pytest

from unetcli.rle import rle_decode, rle_encode


def test_known_encoding_is_row_major_and_one_indexed():
    mask = np.array([[1, 1, 0], [0, 0, 1]])
    assert rle_encode(mask) == "1 2 6 1"
    np.testing.assert_array_equal(rle_decode("1 2 6 1", (2, 3)), mask)


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_of_random_masks(seed):
    rng = np.random.default_rng(seed)
    mask = (rng.random((37, 53)) > 0.6).astype(np.uint8)
    np.testing.assert_array_equal(rle_decode(rle_encode(mask), mask.shape), mask)


def test_masks_touching_first_and_last_pixel():
    mask = np.zeros((4, 5), np.uint8)
    mask[0, 0] = mask[-1, -1] = 1
    assert rle_encode(mask) == "1 1 20 1"
    full = np.ones((4, 5), np.uint8)
    assert rle_encode(full) == "1 20"
    np.testing.assert_array_equal(rle_decode(rle_encode(full), (4, 5)), full)


def test_empty_mask_is_empty_string():
    assert rle_encode(np.zeros((3, 3))) == ""
    assert not rle_decode("", (3, 3)).any()


def test_decode_rejects_malformed_codes():
    with pytest.raises(ValueError, match="pairs"):
        rle_decode("1 2 3", (2, 2))
    with pytest.raises(ValueError, match="outside"):
        rle_decode("3 5", (2, 2))
