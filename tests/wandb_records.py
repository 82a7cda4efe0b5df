"""Reads a W&B offline run file (run-<id>.wandb) back, as `wandb sync` would read it.

The file is a LevelDB-style log (32 KiB blocks of records with a 7-byte header) after a
7-byte W&B header; each record is a `wandb_internal_pb2.Record`. wandb 0.31 no longer ships
a Python reader for it, so the tests keep this one.
"""

from __future__ import annotations

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[pb.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, chunks, found = 7, b"", []
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # padding at the end of a block
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        body = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        chunks = body if kind in (FULL, FIRST) else chunks + body
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(chunks)
            found.append(record)
    return found


def run_files(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))


def summary(path: Path) -> dict:
    """What the run holds: id, group, tags, config keys, history rows, artifact files."""
    out: dict = {"history": [], "config": {}, "artifacts": [], "tags": []}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out.update(id=record.run.run_id, group=record.run.run_group)
            out["tags"] += list(record.run.tags)
            out["config"].update({i.key: i.value_json for i in record.run.config.update})
        elif kind == "config":
            out["config"].update({i.key: i.value_json for i in record.config.update})
        elif kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): i.value_json
                                   for i in record.history.item})  # fmt: skip
        elif kind == "artifact":
            out["artifacts"] += [m.path for m in record.artifact.manifest.contents]
    return out
