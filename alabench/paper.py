"""The ALANet paper's published numbers (MM 2020, Tables 2 and 3), kept as data.

The report shows them as separate rows marked † "reported in the paper", never mixed with what this
suite measures: they come from other code, other data (Adobe240 / YouTube240 at 640x352) and, for the
† rows of Table 2, BIN's all-blurry test protocol. The paper gives PSNR and SSIM only (no LPIPS, no
intervals). ``None`` = "-" in the paper (the method does not address that task).
"""

from __future__ import annotations

from dataclasses import dataclass

from alabench.vocabulary import KINDS

# Table 2 column order: kind (deblur, interp, joint), then data set, then metric.
DATASETS = ("adobe240", "youtube240")


@dataclass(frozen=True)
class PaperRow:
    """One row of a published table: {(kind, dataset, metric): value}."""

    method: str  # as printed in the paper
    source: str  # who reported it (the paper cites [25] = BIN for every † row)
    values: dict[tuple[str, str, str], float | None]


def _row(method: str, source: str, numbers: list[float | None]) -> PaperRow:
    """``numbers`` in the paper's column order: per kind, Adobe240 PSNR, SSIM, YouTube240 PSNR, SSIM."""
    keys = [(k, d, m) for k in KINDS for d in DATASETS for m in ("psnr", "ssim")]
    assert len(numbers) == len(keys), method
    return PaperRow(method, source, dict(zip(keys, numbers)))


_ = None
TABLE2: tuple[PaperRow, ...] = (
    _row("Blurry Inputs", "BIN [25]", [28.68, 0.8584, 31.96, 0.9119, _, _, _, _, _, _, _, _]),
    _row("Super SloMo [9]", "BIN [25]", [_, _, _, _, 27.52, 0.8593, 30.84, 0.9107, _, _, _, _]),
    _row("MEMC-Net [4]", "BIN [25]", [_, _, _, _, 30.83, 0.9128, 34.91, 0.9596, _, _, _, _]),
    _row("DAIN [3]", "BIN [25]", [_, _, _, _, 31.03, 0.9172, 35.09, 0.9615, _, _, _, _]),
    _row("Jin [10]", "BIN [25]", [29.40, 0.8734, 32.06, 0.9119, 29.24, 0.8754, 32.24, 0.9140,
                                  29.32, 0.8744, 32.15, 0.9130]),
    _row("BIN₄ [25]", "BIN [25]", [32.67, 0.9236, 35.10, 0.9417, 32.51, 0.9280, 35.10, 0.9468,
                                   32.59, 0.9258, 35.10, 0.9443]),
    _row("ALANET (Ours)", "ALANet", [33.71, 0.9429, 35.94, 0.9496, 32.98, 0.9362, 35.85, 0.9513,
                                     33.34, 0.9355, 35.89, 0.9504]),
)

# The method measured here that each † row stands for (the report names the † row beside it).
MEASURED_AS: dict[str, str] = {"Blurry Inputs": "blurry_input", "Super SloMo [9]": "superslomo",
                               "MEMC-Net [4]": "memcnet", "DAIN [3]": "dain", "Jin [10]": "jin",
                               "BIN₄ [25]": "bin", "ALANET (Ours)": "alanet"}

# Parameters of each published model, counted by building the authors' own code on the CPU
# (bench/authors_models.py; docs/methods.md): a row trained here says what share of it it has.
PUBLISHED_PARAMETERS: dict[str, int] = {
    "alanet": 30_602_918, "superslomo": 39_610_473, "cain": 42_780_432, "nafnet": 17_111_907,
    "bin": 11_441_668, "dain": 24_031_656, "memcnet": 67_260_469, "jin": 10_812_492}

# Table 3 (Adobe240 only): ablation of the attention, deblurring and interpolation.
TABLE3: tuple[PaperRow, ...] = tuple(
    PaperRow(name, "ALANet", {("deblur", "adobe240", "psnr"): a, ("deblur", "adobe240", "ssim"): b,
                              ("interp", "adobe240", "psnr"): c, ("interp", "adobe240", "ssim"): d})
    for name, a, b, c, d in (
        ("only Self-Attention", 31.98, 0.9373, 30.87, 0.9233),
        ("only Cross-Attention", 32.36, 0.9385, 32.77, 0.9340),
        ("ALANET", 33.71, 0.9429, 32.98, 0.9362),
    )
)
