"""How an epoch is shared between processes (no processes needed: the sampler is pure)."""

from __future__ import annotations

from unetcli.distributed.processes import block
from unetcli.training.data import DistributedEpochSampler, EpochSampler


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items) - size + 1, size)]


def test_two_processes_of_batch_b_see_the_batches_of_one_process_of_batch_2b():
    size, b = 26, 3
    for epoch in (1, 2, 7):
        one = EpochSampler(size, seed=5, shuffle=True)
        one.set_epoch(epoch)
        ranks = []
        for rank in (0, 1):
            part = DistributedEpochSampler(size, 5, True, rank, 2)
            part.set_epoch(epoch)
            ranks.append(list(part))
            assert len(part) == len(ranks[-1]) == size // 2
        # Each image (with its augmentation seed) once per epoch across the ranks...
        seen = ranks[0] + ranks[1]
        assert len({index for _, index in seen}) == len(seen) == size
        # ...in the same global batches as one process with twice the batch.
        together = [sorted(x + y) for x, y in zip(batches(ranks[0], b), batches(ranks[1], b))]
        assert together == [sorted(batch) for batch in batches(list(one), 2 * b)]
        # Different images, so different augmentation seeds, in each process.
        assert not {s for s, _ in ranks[0]} & {s for s, _ in ranks[1]}


def test_an_uneven_epoch_drops_its_tail_instead_of_repeating_images():
    ranks = [list(DistributedEpochSampler(11, 0, True, rank, 3)) for rank in range(3)]
    seen = [index for part in ranks for _, index in part]
    assert [len(p) for p in ranks] == [3, 3, 3] and len(set(seen)) == 9


def test_blocks_are_contiguous_whole_batches_covering_everything_once():
    for count, parts, unit in [(32, 2, 8), (13, 2, 4), (5, 4, 2), (3, 4, 1), (0, 2, 4)]:
        blocks = [block(count, parts, part, unit) for part in range(parts)]
        assert [i for b in blocks for i in b] == list(range(count))
        assert all(b.start % unit == 0 for b in blocks if len(b))
