"""Where training sets live and how their files are written: JSONL, replaced atomically, and counted."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from config.settings import get_settings

DATASETS = Path("finetune") / "datasets"
TRAIN, NEGATIVES, MANIFEST = "train.jsonl", "negatives.jsonl", "manifest.json"
COUNTED = ("source", "kind", "language", "prompt")


def datasets_dir(data_dir: Path | None = None) -> Path:
    """Where built training sets live: ``<data_dir>/finetune/datasets``."""
    return (data_dir or get_settings().data_dir) / DATASETS


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` so a reader sees the old file or the new one, never half of either (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def jsonl(records: Iterable[dict[str, Any]]) -> str:
    """Records as JSON lines (UTF-8 kept readable: Chinese is written as Chinese)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """A JSON file, written atomically."""
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSONL file (none if it does not exist)."""
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


def count(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Examples per source, kind, language and prompt."""
    counts: dict[str, dict[str, int]] = {k: {} for k in COUNTED}
    for record in records:
        for key, bucket in counts.items():
            bucket[record[key]] = bucket.get(record[key], 0) + 1
    return {k: dict(sorted(v.items())) for k, v in counts.items()}
