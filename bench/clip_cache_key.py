"""What does keying the ClipCache on the frames' bytes cost, against keying it on their stat?

Times, per clip, the two keys side by side on clips of the default data set's size
(params.yaml `synth`: train clips of `synth.train.frames` frames at `synth.width` x `synth.height`):
the stat key the cache used before (every frame's name, size and mtime; blind to a rewrite that
keeps both) and the content key it uses now (`alabench.datasets.clip_digest`, a sha256 of every
frame's bytes); with, for scale, decoding the clip (what a cache miss costs). Reads
data/sharp/synth/train when it is there (`dvc repro synth`), else renders `--clips` clips of that
size into a temporary folder. Files are in the page cache (read once first), as they are when
training starts: `alabench.training_run.data_fingerprint` has just read them.

    .venv/bin/python bench/clip_cache_key.py [--clips 8] [--repeats 20]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from alabench.config import load_params
from alabench.datasets import clip_digest
from alabench.frames import frame_name, list_clips, list_frames, read_clip, write_png
from alabench.sources.synth import render_clip


def stat_key(clip_dir: Path) -> str:
    """The old key: path, and every frame's name, size and mtime."""
    digest = hashlib.sha256(str(clip_dir.resolve()).encode())
    for path in list_frames(clip_dir):
        st = path.stat()
        digest.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()


def per_clip(key: Callable[[Path], object], clips: list[Path], repeats: int) -> float:
    """Median over ``repeats`` passes of the seconds one clip takes."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for clip in clips:
            key(clip)
        times.append((time.perf_counter() - start) / len(clips))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="clips to render when data/sharp/synth/train is absent")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--split", type=Path, default=Path("data/sharp/synth/train"))
    args = parser.parse_args()
    synth = load_params().synth
    with tempfile.TemporaryDirectory() as tmp:
        if args.split.is_dir() and any(args.split.iterdir()):
            clips, where = list_clips(args.split), str(args.split)
        else:
            for i in range(args.clips):
                rendered = render_clip(synth, "train", i, synth.train.frames)
                for t, frame in enumerate(rendered.frames):
                    write_png(Path(tmp) / rendered.name / frame_name(t), frame, synth.png_compression)
            clips, where = list_clips(Path(tmp)), f"{args.clips} clips rendered like `synth` train"
        frames = len(list_frames(clips[0]))
        megabytes = sum(p.stat().st_size for p in list_frames(clips[0])) / 1e6
        clip_digest(clips[0])  # into the page cache, as at the start of training
        by_stat = per_clip(stat_key, clips, args.repeats)
        by_content = per_clip(clip_digest, clips, args.repeats)
        decode = per_clip(read_clip, clips, max(1, args.repeats // 5))
    print(f"ClipCache key per clip: {where}; {frames} frames of {synth.width}x{synth.height}, {megabytes:.2f} MB "
          f"of PNG per clip; median of {args.repeats} passes")
    print(f"{'key':<34}{'ms per clip':>12}")
    print(f"{'stat (name, size, mtime; before)':<34}{by_stat * 1e3:>12.3f}")
    print(f"{'content (sha256 of the bytes; now)':<34}{by_content * 1e3:>12.3f}")
    print(f"{'decode the clip (a cache miss)':<34}{decode * 1e3:>12.3f}")
    print(f"ratio content / stat: {by_content / by_stat:.1f}x; content / decode: {by_content / decode:.3f}; "
          f"{synth.train.clips} train clips: {by_content * synth.train.clips:.2f} s by content, "
          f"{by_stat * synth.train.clips:.3f} s by stat, once per clip per run")


if __name__ == "__main__":
    main()
