"""Where things live on disk, for every module that reads or writes them (the layout module that
issue 32 grows: results, checkpoints and stage names move here one by one). Torch-free and tiny, so a
stage that needs one folder name does not import, and depend on, the code that fills the folder."""

from __future__ import annotations

from pathlib import Path

OUTSIDE = Path("outside")  # scores of `python -m stages.score`: git-ignored, not DVC outputs, marked on the page
