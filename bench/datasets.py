"""Is training I/O bound? Samples per second of TrainWindows, PNG decoding vs the ClipCache.

Both sides build the same windows (same params, same draws); the baseline decodes from PNG exactly
the frames a sample needs, the cache memory-maps one uint8 array per clip. Run after `make repro`
(it reads data/sharp/synth/train):

    .venv/bin/python bench/datasets.py [--samples 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from alabench.blur import Eq7
from alabench.config import load_params
from alabench.datasets import ClipCache, TrainWindows, split_train_val
from alabench.frames import list_clips, list_frames, read_png


class LazyPngClip:
    """Array-like over a clip's PNGs that decodes only the frames an index asks for."""

    def __init__(self, clip_dir: Path) -> None:
        self.paths = list_frames(clip_dir)
        self.shape = (len(self.paths), *read_png(self.paths[0]).shape)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        t, *rest = key if isinstance(key, tuple) else (key,)
        if isinstance(t, (int, np.integer)):
            return read_png(self.paths[t])[tuple(rest)]
        return np.stack([read_png(self.paths[i])[tuple(rest)] for i in range(len(self))[t]])


class DecodeEveryTime:
    def load(self, clip_dir: Path) -> LazyPngClip:
        return LazyPngClip(clip_dir)


def rate(data: TrainWindows, samples: int) -> float:
    order = np.random.default_rng(0).permutation(len(data))[:samples]
    start = time.perf_counter()
    for i in order:
        data[int(i)]
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--split", type=Path, default=Path("data/sharp/synth/train"))
    args = parser.parse_args()
    params = load_params()
    train, _ = split_train_val(list_clips(args.split), params.train_data.val_clips)
    eq7 = Eq7.from_params(params.blur)
    with tempfile.TemporaryDirectory() as cache_dir:
        cached = TrainWindows(train, eq7, params.train_data, ClipCache(Path(cache_dir)))
        start = time.perf_counter()
        for clip in train:
            cached.cache.load(clip)
        warm_up = time.perf_counter() - start
        png = TrainWindows(train, eq7, params.train_data, DecodeEveryTime())  # type: ignore[arg-type]
        png_rate, cache_rate = rate(png, args.samples), rate(cached, args.samples)
    h, w = read_png(list_frames(train[0])[0]).shape[:2]
    print(f"TrainWindows on {len(train)} clips of {w}x{h}, window {params.train_data.window}, "
          f"crop {params.train_data.crop}, {args.samples} samples")
    print(f"{'source':<28}{'samples/s':>12}")
    print(f"{'PNG decode per sample':<28}{png_rate:>12.1f}")
    print(f"{'ClipCache (memory-mapped)':<28}{cache_rate:>12.1f}")
    print(f"ratio cache / PNG: {cache_rate / png_rate:.1f}x  (one-off cache build: {warm_up:.1f} s)")


if __name__ == "__main__":
    main()
