"""Stage `synth`: render the embedded 240 fps data set into data/sharp/synth/{train,test}/<clip>/."""

from __future__ import annotations

from alabench.cli import stage_main
from alabench.config import load_params
from alabench.frames import atomic_dir
from alabench.layout import sharp_dir
from alabench.sources.synth import write_dataset

OUT = sharp_dir("synth")


def main() -> None:
    params = load_params()
    with atomic_dir(OUT) as tmp:
        write_dataset(params.synth, tmp)


if __name__ == "__main__":
    stage_main("synth", main)
