"""Do the frame checks find what they should, and nothing else? Margins on rendered footage.

Shots are rendered by the synth renderer (real photos, smooth camera and layer motion), encoded
with H.264 and decoded again, as footage from the web would be. For the cut detector it compares
the rule of ``alabench/sources/checks.py`` (d_t >= cut_diff AND d_t >= cut_ratio x median of its
neighbours) with a fixed threshold alone (d_t >= cut_diff, the shape of a plain content detector):

* hard cuts between shots of different photos, and between two shots of the same photo;
* single shots from slow to very fast motion (no cut: any detection is a false cut).

For the repeated-frame check it prints the share of pairs flagged on genuine 240 fps shots and on
streams whose frames were repeated 2x and 4x (frame-rate converted). Run:

    .venv/bin/python bench/frame_checks.py [--shots 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from footage import decode, encode, shot  # noqa: E402

from alabench.config import load_params  # noqa: E402
from alabench.sources.checks import cut_scores, find_cuts, frame_difference, repeated_pairs, thumbnail  # noqa: E402

SPEEDS = {"slow": (0.05, 0.2), "medium": (0.2, 1.2), "fast": (2.0, 4.0), "very fast": (4.0, 8.0)}


def differences(frames: np.ndarray, work: Path, thumbs: bool = False) -> np.ndarray:
    """d_t of the frames after an H.264 round trip (of their thumbnails with ``thumbs``)."""
    decoded = decode(encode(work / "v.mp4", frames, 240))
    if thumbs:
        decoded = np.stack([thumbnail(f) for f in decoded])
    return np.array([frame_difference(a, b) for a, b in zip(decoded, decoded[1:])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=6, help="shots (or cut pairs) per case")
    args = parser.parse_args()
    checks = load_params().checks
    print(f"checks: cut_window {checks.cut_window}, cut_diff {checks.cut_diff}, cut_ratio {checks.cut_ratio}, "
          f"repeat_ratio {checks.repeat_ratio}, max_repeated {checks.max_repeated}\n")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"{'case':<34} {'d at cut':>14} {'score at cut':>14} {'max d, no cut':>14} {'max score':>10} "
              f"{'found':>6} {'false (rule)':>13} {'false (d only)':>15}")
        for label, speed in SPEEDS.items():
            for kind, second in (("cut, other photo", "train"), ("cut, same photo", "test")):
                cut_d, cut_s, other_d, other_s, found, false_rule, false_plain = [], [], [], [], 0, 0, 0
                for i in range(args.shots):
                    a = shot(i, 40, speed)
                    b = shot(i + 5 if second == "test" else i, 40, speed, split=second)  # 5 test photos
                    d = differences(np.concatenate([a, b]), work, thumbs=True)
                    s = cut_scores(d, checks.cut_window)
                    cut_d.append(d[39]), cut_s.append(s[39])
                    rest = np.delete(np.arange(len(d)), 39)
                    other_d.append(d[rest].max()), other_s.append(s[rest].max())
                    cuts = find_cuts(d, checks)
                    found += 40 in cuts
                    false_rule += len([c for c in cuts if c != 40])
                    false_plain += int((d[rest] >= checks.cut_diff).sum())
                print(f"{kind + ', ' + label:<34} {min(cut_d):>6.1f}-{max(cut_d):<7.1f} {min(cut_s):>6.1f}-"
                      f"{max(cut_s):<7.1f} {max(other_d):>14.1f} {max(other_s):>10.2f} {found:>3}/{args.shots} "
                      f"{false_rule:>13} {false_plain:>15}")
            d_max, s_max, false_rule, false_plain = [], [], 0, 0
            for i in range(args.shots):
                d = differences(shot(i, 80, speed), work, thumbs=True)
                s = cut_scores(d, checks.cut_window)
                d_max.append(d.max()), s_max.append(s.max())
                false_rule += len(find_cuts(d, checks))
                false_plain += int((d >= checks.cut_diff).sum())
            print(f"{'no cut, ' + label:<34} {'':>14} {'':>14} {max(d_max):>14.1f} {max(s_max):>10.2f} "
                  f"{'':>6} {false_rule:>13} {false_plain:>15}")

        print(f"\n{'repeated frames: stream':<40} {'pairs flagged (min-max)':>24} {'videos rejected':>16}")
        for label, speed in SPEEDS.items():
            for repeat in (1, 2, 4):
                shares = []
                for i in range(args.shots):
                    frames = np.repeat(shot(i, 80 // repeat, speed), repeat, axis=0)
                    shares.append(repeated_pairs(differences(frames, work), checks).mean())
                name = "genuine 240 fps" if repeat == 1 else f"each frame x{repeat}"
                rejected = sum(s > checks.max_repeated for s in shares)
                print(f"{name + ', ' + label:<40} {min(shares):>15.0%} - {max(shares):<6.0%} {rejected:>10}/{args.shots}")


if __name__ == "__main__":
    main()
