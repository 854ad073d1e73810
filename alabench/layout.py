"""Where things live on disk, for every module that reads or writes them (the layout module that
issue 32 grows: results, checkpoints and stage names move here one by one). Torch-free and tiny, so a
stage that needs one folder name does not import, and depend on, the code that fills the folder."""

from __future__ import annotations

from pathlib import Path

OUTSIDE = Path("outside")  # scores of `python -m stages.score`: git-ignored, not DVC outputs, marked on the page

# The mechanism probes of one evaluation (alabench.probes), inside its results folder
# results/<dataset>/<protocol>/<method>/: the costs in PROBES, each knock-out's frame scores (frames.csv's
# columns) in PROBE_FRAMES/<knock-out>.csv. The evaluate stage writes them after the folder itself.
PROBES = "probes.json"
PROBE_FRAMES = "probes"


def probe_frames(result_dir: Path, knockout: str) -> Path:
    """frames.csv of the method scored with ``knockout`` active."""
    return Path(result_dir) / PROBE_FRAMES / f"{knockout}.csv"
