"""Table 3's comparisons on the page: which pairs, in which order, and the MDD beside each difference."""

from __future__ import annotations

from dataclasses import dataclass

from alabench import stats
from alabench.report.ablation import comparison_rows, pairs


@dataclass
class FakeResult:
    method: str
    ok: bool = True


class FakeResults:
    def __init__(self, methods: list[str]) -> None:
        self.found = {m: FakeResult(m) for m in methods}

    def get(self, dataset: str, protocol: str, method: str) -> FakeResult | None:
        return self.found.get(method)


def test_pairs_follow_the_ablation_order_then_meet_the_attention_free_unet():
    ablation = ["alanet_self", "alanet_cross", "alanet"]
    assert pairs(ablation, ablation) == [("alanet_cross", "alanet_self"), ("alanet", "alanet_self"),
                                         ("alanet", "alanet_cross")]
    assert pairs(ablation, [*ablation, "unet"])[3:] == [(m, "unet") for m in ablation]


def test_each_row_shows_the_paired_difference_its_interval_and_its_mdd():
    seen = []

    def compare(a, b, kind, metric):
        seen.append((a.method, b.method, kind, metric))
        return stats.Difference(0.02 if kind == "joint" else 0.3, -0.01, 0.05, 12, 1, 0.042) if kind != "interp" \
            else stats.Difference(0.3, 0.1, 0.5, 12, 1, 0.2)

    rows = comparison_rows(FakeResults(["alanet_self", "alanet", "unet"]), compare, "all_blurry", "synth",
                           ["alanet_self", "alanet"], ["alanet_self", "alanet", "unet"])
    assert [r["pair"] for r in rows] == ["alanet − alanet_self", "alanet_self − unet", "alanet − unet"]
    joint = rows[0]["cells"][2]
    assert (joint["text"], joint["mdd"], joint["mark"]) == ("+0.020 [-0.010, +0.050]", "0.042", "")
    assert rows[0]["cells"][1]["mark"] == "separates"  # its interval excludes zero
    assert "12 units × 1 seed(s)" in joint["title"]
    assert seen[:3] == [("alanet", "alanet_self", k, "psnr") for k in ("deblur", "interp", "joint")]
    # a pair with a side that was not run, or that failed, is left out
    missing = FakeResults(["alanet_self", "alanet"])
    missing.found["alanet"].ok = False
    assert comparison_rows(missing, compare, "all_blurry", "synth", ["alanet_self", "alanet"], ["alanet_self"]) == []
