"""Every random draw is the same in every process: two processes with different PYTHONHASHSEED (so that
Python's ``hash()`` of a string differs between them) make each draw and compare digests.

Draws covered: the `mixed` blur draw (``blur_draw`` and the manifest ``prepare_split`` writes), the
validation draw, the training samples' draws and the data order of every (seed, epoch), a model's
initial weights, and the bootstrap resamples with the interval they give.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO, write_clip

CHILD = textwrap.dedent("""
    import hashlib, json, sys
    from pathlib import Path
    import numpy as np, pandas as pd, torch
    from alabench import stats
    from alabench.blur import Eq7, blur_draw, prepare_split
    from alabench.config import parse_params
    from alabench.datasets import ClipCache, TrainWindows, ValidationWindows
    from alabench.methods import build_model, get_method
    from alabench.training import Distributed, EpochOrder
    from conftest import tiny_params

    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    digest = lambda value: hashlib.sha256(repr(value).encode()).hexdigest()[:16]
    draws = {"hash() of a name (must differ)": hash("clip10") % 10**6}
    draws["blur_draw"] = digest([blur_draw(s, c, 13, 0.5).tolist() for s in (0, 1) for c in ("clip2", "clip10", "x")])
    data = tiny_params()
    data["train_data"].update(p_blur=0.5, val_p_blur=0.5)  # draws of which inputs are blurry, not all of them
    params = parse_params(data)
    prepare_split(root / "sharp" / "test", out, params.blur, root=root)
    manifest = pd.read_csv(out / "mixed" / "manifest.csv")  # its paths name this process's folder: left out
    draws["mixed manifest"] = digest(manifest[["clip", "k", "center", "blurry"]].values.tolist())
    clips = sorted((root / "sharp" / "test").iterdir())
    eq7, cache = Eq7.from_params(params.blur), ClipCache(out / "cache")
    val = ValidationWindows(clips, eq7, params.train_data, cache)
    draws["validation draw"] = digest([(w.clip.name, w.first_center, b.tolist()) for w, b in val.items])
    train = TrainWindows(clips, eq7, params.train_data, cache)
    samples = []
    for epoch in (0, 1):
        train.set_epoch(epoch)
        samples += [train[i]["inputs"].numpy().tobytes() for i in range(3)]
    draws["training samples"] = digest(samples)
    one = Distributed(0, 1, torch.device("cpu"))
    draws["data order"] = digest([list(EpochOrder(40, 4, s, e, one)) for s in (0, 1) for e in (0, 1)])
    torch.manual_seed(0)
    model = build_model(get_method("alanet"), params)
    draws["initial weights"] = digest([t.numpy().tobytes() for t in model.state_dict().values()])
    draws["resamples"] = digest(stats.Resamples.draw(9, 3, 50, 0).units.tobytes())
    frames = pd.DataFrame([("", f"u{u}", f"u{u}", 0, kind, 1, 20.0 + u * u % 7, 0.5, 0.5)
                           for u in range(9) for kind in ("deblur", "interp")],
                          columns=["seed", "video", "clip", "k", "kind", "input_blurry", "psnr", "ssim", "lpips"])
    a = stats.UnitScores.from_frames(frames, 50.0)
    draws["summary intervals"] = digest(stats.averages(a, stats.Resamples.draw(9, 1, 200, 0), 0.95))
    print(json.dumps(draws))
""")


def draws_in_processes(hash_seeds: tuple[str, ...], root) -> list[dict[str, object]]:
    """The CHILD's digests from one process per PYTHONHASHSEED, run side by side."""
    children = []
    for seed in hash_seeds:
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)])}
        children.append(subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(root / f"out{seed}")], cwd=REPO,
                                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    found = []
    for child in children:
        stdout, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr[-3000:]
        found.append(json.loads(stdout.strip().splitlines()[-1]))
    return found


@pytest.mark.pipeline  # starts processes of its own
def test_every_random_draw_is_the_same_in_processes_with_different_hash_seeds(tmp_path):
    rng = np.random.default_rng(4)
    for name, frames in (("clip2", 30), ("clip10", 30), ("c", 35)):
        write_clip(tmp_path / "sharp" / "test" / name, rng.integers(0, 256, (frames, 32, 32, 3), dtype=np.uint8))
    first, second = draws_in_processes(("1", "2"), tmp_path)
    control = "hash() of a name (must differ)"
    assert first.pop(control) != second.pop(control), "PYTHONHASHSEED did not change hash(): the test proves nothing"
    differ = sorted(k for k in first if first[k] != second[k])
    assert differ == [], f"draws that depend on the process: {differ}"
