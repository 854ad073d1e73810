"""Mechanism probes: every declared knock-out switches off what it says, in `forward` and in the
Incremental path; evaluation writes each knock-out's cost, recomputable from the frames it wrote; the
report shows them; the training diagnostics measure gates and weight changes.

A knock-out wired to nothing must fail here: the models are *untrained*, with their residual heads
(zero at initialisation, so that an untrained model returns its input whatever the latent) redrawn,
and their gates made strongly input-dependent, so that every part reaches the outputs.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import sys

import numpy as np
import pytest
import torch
from conftest import run, tiny_params
from test_evaluation import make_clip
from test_mechanisms import frames, gates, strong_gates
from test_methods import perturbed
from test_report import PARAMS as REPORT_PARAMS, section, write_fixture
from torch import nn

from alabench import stats
from alabench.config import parse_params
from alabench.diagnostics import training_diagnostics
from alabench.evaluation import checkpoint_path, evaluate_method, write_results
from alabench.summary import read_frames
from alabench.layout import PROBES, probe_frames
from alabench.methods import Knockouts, MethodError, build_model, get_method, knockouts_of
from alabench.probes import run_probes, write_probes
from alabench.report import build_report, write_report
from alabench.report.figures import knockout_figure
from alabench.report.probes import verdict
from alabench.training import save_checkpoint
from alabench.vocabulary import INPUTS

PARAMS = parse_params(tiny_params())
DECLARED = {"alanet": ["latent_zeroed", "cross_knocked_out", "self_knocked_out", "gates_fixed"],
            "alanet_self": ["latent_zeroed", "gates_fixed"],
            "alanet_cross": ["latent_zeroed", "cross_knocked_out", "gates_fixed"],
            "unet": ["latent_zeroed"]}
CASES = [(m, k) for m, names in DECLARED.items() for k in names]


def untrained(name: str) -> nn.Module:
    """A registered variant as built for training, its residual heads redrawn (and every weight nudged,
    the gates made strong: a gate's output then depends on its frame)."""
    torch.manual_seed(0)
    model = perturbed(build_model(get_method(name), PARAMS), 4)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for head in {model.deblur_generator.out, model.interp_generator.out}:
            head.weight.copy_(torch.randn(head.weight.shape, generator=g) * 0.3)
    return strong_gates(model).eval() if gates(model) else model.eval()


def incremental(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The outputs of one window through encode_frames / deblur_at / interp_at (clip inference's path)."""
    with torch.no_grad():
        window = [model.encode_frames(x[:, t]) for t in range(x.shape[1])]
        return (torch.stack([model.deblur_at(window, i) for i in range(x.shape[1])], 1),
                torch.stack([model.interp_at(window, i) for i in range(x.shape[1] - 1)], 1))


def both_paths(model: nn.Module, x: torch.Tensor, knockout: str | None = None) -> dict[str, torch.Tensor]:
    """forward's and the Incremental path's deblur and interp outputs, with ``knockout`` active."""
    def run() -> dict[str, torch.Tensor]:
        with torch.no_grad():
            (d, i), (d2, i2) = model(x), incremental(model, x)
        return {"deblur": d, "interp": i, "deblur_incremental": d2, "interp_incremental": i2}
    if knockout is None:
        return run()
    with model.knockout(knockout):
        return run()


def assert_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-6) -> None:
    for key in a:
        assert torch.allclose(a[key], b[key], atol=atol), (key, (a[key] - b[key]).abs().max().item())


def test_each_variant_declares_exactly_its_knockouts():
    for name, expected in DECLARED.items():
        model = build_model(get_method(name), PARAMS)
        assert isinstance(model, Knockouts) and list(knockouts_of(model)) == expected, name
        assert all(isinstance(v, str) and v and "\n" not in v for v in knockouts_of(model).values())
    assert knockouts_of(build_model(get_method("superslomo"), PARAMS)) == {}  # declares none: not probed


class BadNames(nn.Module):
    window = 2

    def __init__(self, declared: dict) -> None:
        super().__init__()
        self.declared = declared

    def knockouts(self) -> dict:
        return self.declared

    def knockout(self, name: str):  # never reached
        raise AssertionError


@pytest.mark.parametrize("declared,message", [
    ({"../gate": "x"}, r"BadNames.knockouts\(\): '../gate' must match .* \(it names the file probes/<name>.csv\); rename it"),
    ({"gate": "two\nlines"}, r"the description of 'gate' must be one line of text, got 'two\\nlines'"),
])
def test_a_knockout_name_that_cannot_name_a_file_is_refused_with_one_line(declared, message):
    with pytest.raises(MethodError, match=message):
        knockouts_of(BadNames(declared))


@pytest.mark.parametrize("name,knockout", CASES)
def test_every_knockout_changes_both_paths_of_an_untrained_model_and_is_undone_after(name, knockout):
    model, x = untrained(name), frames()
    intact = both_paths(model, x)
    assert_equal({"deblur": intact["deblur"], "interp": intact["interp"]},
                 {"deblur": intact["deblur_incremental"], "interp": intact["interp_incremental"]}, 1e-5)
    knocked = both_paths(model, x, knockout)
    for key in intact:  # the part reaches every output: switching it off must show, on both paths
        assert (knocked[key] - intact[key]).abs().max() > 1e-4, (name, knockout, key)
    assert torch.allclose(knocked["deblur"], knocked["deblur_incremental"], atol=1e-5)  # one knock-out, both paths
    assert torch.allclose(knocked["interp"], knocked["interp_incremental"], atol=1e-5)
    assert_equal(both_paths(model, x), intact)  # back on after the block


class ZeroLatent(nn.Module):
    """An attention module M whose latents are zero."""

    def deblur(self, latents: list[torch.Tensor], i: int) -> torch.Tensor:
        return torch.zeros_like(latents[i])

    def interp(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x_a)


@pytest.mark.parametrize("name", list(DECLARED))
def test_latent_zeroed_equals_an_explicitly_zero_latent(name):
    model, x = untrained(name), frames()
    reference = copy.deepcopy(model)
    reference.attention = ZeroLatent()
    assert_equal(both_paths(model, x, "latent_zeroed"), both_paths(reference, x))


class Half(nn.Module):
    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.full_like(pooled, 0.5)


@pytest.mark.parametrize("name", ["alanet", "alanet_self", "alanet_cross"])
def test_gates_fixed_equals_gates_of_one_half(name):
    model, x = untrained(name), frames()
    reference = copy.deepcopy(model)
    for gate in gates(reference).values():
        gate.gate = Half()
    assert_equal(both_paths(model, x, "gates_fixed"), both_paths(reference, x))


def test_self_knocked_out_equals_alanet_without_its_self_terms():
    model, x = untrained("alanet"), frames()
    reference = copy.deepcopy(model)
    reference.attention.use_self = False  # eq. 5 and 6 with their M_C terms only, alanet's own gates
    assert_equal(both_paths(model, x, "self_knocked_out"), both_paths(reference, x))


@pytest.mark.parametrize("name", ["alanet", "alanet_cross"])
def test_cross_knocked_out_makes_a_frames_deblurring_independent_of_its_neighbours(name):
    model, x = untrained(name), frames()
    other = x.clone()
    other[:, [0, 2]] = frames(seed=9)[:, [0, 2]]  # the middle frame's neighbours replaced by other content
    intact, intact_other = both_paths(model, x), both_paths(model, other)
    assert (intact["deblur"][:, 1] - intact_other["deblur"][:, 1]).abs().max() > 1e-4  # intact: they matter
    knocked, knocked_other = both_paths(model, x, "cross_knocked_out"), both_paths(model, other, "cross_knocked_out")
    for key in ("deblur", "deblur_incremental"):
        assert torch.allclose(knocked[key][:, 1], knocked_other[key][:, 1], atol=1e-6), key


def test_unknown_nested_and_failing_knockouts():
    model, x = untrained("alanet_self"), frames()
    intact = both_paths(model, x)
    with pytest.raises(KeyError, match=r"no knock-out 'cross_knocked_out'; it has \['gates_fixed', 'latent_zeroed'\]"):
        with model.knockout("cross_knocked_out"):
            pass
    with model.knockout("gates_fixed"), pytest.raises(RuntimeError, match="'gates_fixed' is active already"):
        with model.knockout("latent_zeroed"):
            pass
    with pytest.raises(ValueError, match="inside"), model.knockout("latent_zeroed"):
        raise ValueError("inside")
    assert_equal(both_paths(model, x), intact)  # every part back on, whatever happened in the blocks


# ------------------------------------------------------------------------------------------------
# Evaluation: probes.json and the frames it was computed from.


def test_evaluation_writes_probes_whose_costs_recompute_from_both_frames_tables(tmp_path, monkeypatch, weights_dir):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(weights_dir, tmp_path / "data" / "weights")
    method = get_method("alanet")
    for seed in PARAMS.train.seeds:  # "trained" weights whose every part reaches the outputs
        save_checkpoint(checkpoint_path("synth", "alanet", seed), {"method": "alanet",
                                                                  "model": untrained("alanet").state_dict()})
    clips = [make_clip(f"c{i}", [True, True, False, True], i) for i in range(4)]
    summary = {"device": "cpu", "checkpoints": []}
    scored = evaluate_method(method, PARAMS, "synth", clips, summary)
    intact = scored.frames
    probes = run_probes(method, PARAMS, "synth", clips, "cpu")
    assert [p.name for p in probes] == DECLARED["alanet"] and all(p.error is None for p in probes)
    out = tmp_path / "results" / "synth" / "all_blurry" / "alanet"
    write_results(out, intact, summary, scored.samples)  # as the evaluate stage does: results, then probes
    path = write_probes(out, probes, intact, PARAMS.evaluate, {"method": "alanet", "dataset": "synth",
                                                               "protocol": "all_blurry"})
    assert path == out / PROBES
    written = json.loads(path.read_text())
    assert written["method"] == "alanet" and list(written["knockouts"]) == DECLARED["alanet"]
    cfg = PARAMS.evaluate
    a = stats.UnitScores.from_frames(read_frames(out / "frames.csv"), cfg.psnr_cap)
    for name, entry in written["knockouts"].items():
        knocked = read_frames(probe_frames(out, name))
        assert entry["frames"] == str(probe_frames(out, name)) and len(knocked) == len(intact)
        assert (knocked[["clip", "k", "kind"]].to_numpy() == intact[["clip", "k", "kind"]].to_numpy()).all()
        assert not np.allclose(knocked["psnr"], intact["psnr"])  # the knock-out was active while scoring
        b = stats.UnitScores.from_frames(knocked, cfg.psnr_cap)
        for convention in stats.CONVENTIONS:
            for kind in ("deblur", "interp", "joint"):
                cost = stats.difference(a, b, convention, kind, "psnr", cfg.bootstrap, cfg.confidence, cfg.seed)
                cell = entry["cost"][convention][kind]
                assert cell["mean"] == pytest.approx(cost.mean, abs=1e-5), (name, convention, kind)
                assert cell["ci"] == pytest.approx([cost.lo, cost.hi], abs=1e-5), (name, convention, kind)
                assert cell["units"] == 4
        # the deblurring cost on sharp and blurry inputs apart, on the whole table's units
        split = {}
        for input_kind, flag in INPUTS.items():
            pa, pb = (stats.UnitScores.from_frames(f[f["input_blurry"] == flag], cfg.psnr_cap, a.units, a.seeds)
                      for f in (intact, knocked))
            cost = stats.difference(pa, pb, "per_clip_mse", "deblur", "psnr", cfg.bootstrap, cfg.confidence, cfg.seed)
            split[input_kind] = entry["deblur_cost_by_input"][input_kind]["per_clip_mse"]["mean"]
            assert split[input_kind] == pytest.approx(cost.mean, abs=1e-5), (name, input_kind)
        assert split["sharp"] != split["blurry"], split  # two subsets, not one number twice
        joint = entry["psnr"]["per_clip"]["joint"]  # the knocked-out method's own average
        assert joint == pytest.approx(stats.statistic(b, "per_clip", "joint", "psnr",
                                                      stats.Resamples.point(4, len(b.seeds)))[0], abs=1e-5)
    # a method that does not train (or declares nothing) is not probed
    assert run_probes(get_method("blurry_input"), PARAMS, "synth", clips, "cpu") == []


# ------------------------------------------------------------------------------------------------
# The report.


def fixture_probes(folder, costs: dict[str, tuple[float, float, float]], convention: str = "per_clip") -> None:
    """probes.json with the same (mean, lo, hi) cost on all three tasks of each knock-out."""
    knockouts = {name: {"description": f"what {name} does", "status": "ok", "error": None,
                        "cost": {convention: {k: {"mean": m, "ci": [lo, hi], "units": 8, "seeds": 1}
                                              for k in ("deblur", "interp", "joint")}}}
                 for name, (m, lo, hi) in costs.items()}
    (folder / PROBES).write_text(json.dumps({"method": folder.name, "knockouts": knockouts}))


def test_the_report_shows_each_knockout_cost_with_its_verdict_and_metrics_carry_it(tmp_path):
    write_fixture(tmp_path)
    folder = tmp_path / "results" / "synth" / "all_blurry"
    fixture_probes(folder / "alanet", {"latent_zeroed": (0.5, 0.3, 0.7), "cross_knocked_out": (0.001, -0.02, 0.03),
                                       "gates_fixed": (0.05, -0.2, 0.3)})
    fixture_probes(folder / "alanet_self", {"latent_zeroed": (-0.0002, -0.001, 0.002)})
    report = build_report(tmp_path, REPORT_PARAMS)
    page = section(report.html, "probes-all_blurry")
    assert "Does the attention do anything?" in page
    rows = [r.split("</tr>")[0] for r in page.split('<tbody class="probes">')[1].split("<tr>")[1:]]
    assert len(rows) == 4
    expect = {("alanet", "latent_zeroed"): ("+0.500 [+0.300, +0.700]", "used"),
              ("alanet", "cross_knocked_out"): ("+0.001 [-0.020, +0.030]", "unused"),
              ("alanet", "gates_fixed"): ("+0.050 [-0.200, +0.300]", "unclear"),
              ("alanet_self", "latent_zeroed"): ("+0.000 [-0.001, +0.002]", "unused")}  # no "-0.000"
    for (method, knockout), (cell, word) in expect.items():
        row = next(r for r in rows if f">{method}<" in r and f">{knockout}<" in r)
        assert row.count(f">{cell}</td>") == 3 and f">{word}</td>" in row, row
        assert f'title="what {knockout} does"' in row
    assert 'title="-0.00020 [-0.00100, +0.00200] dB"' in page  # the full precision on hover
    assert 'id="probes-mixed"' not in report.html  # no probes under mixed: no table
    write_report(report, tmp_path / "reports")
    metrics = tmp_path / "reports" / "metrics" / "synth" / "all_blurry"
    assert json.loads((metrics / "alanet.latent_zeroed.json").read_text()) == {"cost": 0.5}
    assert json.loads((metrics / "alanet_self.latent_zeroed.json").read_text()) == {"cost": -0.0002}
    assert "cost" not in json.loads((metrics / "alanet.json").read_text())


def test_under_mixed_the_report_adds_the_deblurring_cost_on_sharp_and_blurry_inputs(tmp_path):
    write_fixture(tmp_path)
    folder = tmp_path / "results" / "synth" / "mixed" / "alanet"
    fixture_probes(folder, {"latent_zeroed": (0.05, 0.01, 0.09), "gates_fixed": (0.0, -0.01, 0.01)}, "per_clip_mse")
    probes = json.loads((folder / PROBES).read_text())
    for entry in probes["knockouts"].values():
        entry["deblur_cost_by_input"] = {"sharp": {"per_clip_mse": {"mean": -4.2, "ci": [-5.0, -3.1]}},
                                         "blurry": {"per_clip_mse": {"mean": 0.25, "ci": [0.1, 0.4]}}}
    (folder / PROBES).write_text(json.dumps(probes))
    report = build_report(tmp_path, REPORT_PARAMS)
    page = section(report.html, "probes-mixed")
    assert "<th>Deblurring, sharp inputs</th><th>Deblurring, blurry inputs</th><th>Verdict</th>" in page, page
    rows = page.split('<tbody class="probes">')[1].split("</tbody>")[0].split("</tr>")[:-1]
    assert [r.split("</td>")[0].rsplit(">", 1)[1] for r in rows] == ["latent_zeroed", "gates_fixed"], rows
    row = rows[0]
    cells = [c.split(">", 1)[1] for c in row.split("<td")[2:]]  # after the knock-out's name
    assert [c.removesuffix("</td>") for c in cells] == ["+0.050 [+0.010, +0.090]"] * 3 + [
        "-4.200 [-5.000, -3.100]", "+0.250 [+0.100, +0.400]", "unused"], cells  # the verdict reads the tasks only


def test_the_report_plots_a_tracked_knockout_cost_against_steps_and_only_then(tmp_path):
    write_fixture(tmp_path)
    assert knockout_figure(tmp_path, "synth") is None  # the fixture's history tracks no knock-out
    history = tmp_path / "training" / "synth" / "alanet" / "seed0" / "history.csv"
    history.write_text("epoch,step,train_loss,joint_psnr,latent_zeroed_cost_joint\n1,10,0.2,25.0,0.0\n2,20,0.1,27.0,0.3\n")
    report = build_report(tmp_path, REPORT_PARAMS)
    figures = section(report.html, "figures")
    assert re.findall(r'<img src="(assets/figures/(?:training|knockouts)-[^"]+)"', figures) == [
        "assets/figures/training-synth.png", "assets/figures/knockouts-synth.png"]
    assert "Knock-out cost against training steps, synth" in figures
    assert len(report.assets["assets/figures/knockouts-synth.png"]) > 1000
    (tmp_path / "checkpoints" / "synth" / "alanet" / "seed0" / "model.pt").unlink()
    assert knockout_figure(tmp_path, "synth") is None  # a history whose checkpoint is not here: another workspace's
    assert knockout_figure(tmp_path, "synth", recorded=True) is not None  # a run record keeps no checkpoints


@pytest.mark.pipeline
def test_dvc_metrics_show_a_row_per_knockout_and_stay_narrow(tmp_path):
    """The tiny pipeline's longest names (alanet_cross's cross knock-out) in `dvc metrics show`."""
    write_fixture(tmp_path)
    for protocol in ("all_blurry", "mixed"):
        folder = tmp_path / "results" / "synth" / protocol
        fixture_probes(folder / "alanet", {k: (0.0123, -0.0456, 0.0789) for k in DECLARED["alanet"]},
                       REPORT_PARAMS.headline[protocol])
        fixture_probes(folder / "alanet_cross", {k: (-0.0123, -0.0456, 0.0789) for k in DECLARED["alanet_cross"]},
                       REPORT_PARAMS.headline[protocol])
    write_report(build_report(tmp_path, REPORT_PARAMS), tmp_path / "reports")
    (tmp_path / "dvc.yaml").write_text("metrics:\n  - reports/metrics\n")
    run(["git", "init", "-q"], tmp_path)
    run([sys.executable, "-m", "dvc", "init", "-q"], tmp_path)
    lines = run([sys.executable, "-m", "dvc", "metrics", "show"], tmp_path).stdout.splitlines()
    assert len(lines) == 1 + 2 * (4 + 4 + 3), lines  # per protocol: 4 methods, 4 + 3 knock-outs
    assert any(line.startswith("reports/metrics/synth/mixed/alanet_cross.cross_knocked_out.json") and "-0.0123" in line
               for line in lines), lines
    assert max(map(len, lines)) < 200, "\n".join(lines)


def test_verdicts():
    assert verdict([(0.12, 0.05, 0.2), (0.0, -0.01, 0.01)]) == "used"  # one task is enough
    assert verdict([(0.09, 0.05, 0.09)]) == "unused"  # above zero, but under 0.1 dB throughout
    assert verdict([(0.08, 0.01, 0.15)]) == "unclear"
    assert verdict([(-0.3, -0.5, -0.2)]) == "unclear"  # knocking it out helps: not "unused"
    assert verdict([(float("nan"),) * 3]) == "unclear"  # no interval (bootstrap 0)


# ------------------------------------------------------------------------------------------------
# Training diagnostics.


def test_training_diagnostics_measure_weight_changes_and_the_gates_spread():
    model = untrained("alanet")
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    x = frames()
    first = training_diagnostics(model, initial, x)
    assert set(first) == {"weight_change_encoder", "weight_change_attention", "weight_change_deblur_generator",
                          "weight_change_interp_generator", "gate_spread", "gate_offset"}
    assert all(isinstance(v, float) for v in first.values())
    assert first["weight_change_encoder"] == 0 and first["gate_spread"] > 1e-3 and first["gate_offset"] > 1e-3
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.mul_(1.5)  # ||1.5 W0 - W0|| / ||W0|| = 0.5
    later = training_diagnostics(model, initial, x)
    assert later["weight_change_encoder"] == pytest.approx(0.5, rel=1e-5)
    assert later["weight_change_attention"] == 0 and not model.training
    for gate in gates(model).values():
        gate.gate = Half()
    stuck = training_diagnostics(model.train(), initial, x)
    assert stuck["gate_spread"] == 0 and stuck["gate_offset"] == 0 and model.training  # its mode is kept
    unet = untrained("unet")
    plain = training_diagnostics(unet, {k: v.clone() for k, v in unet.state_dict().items()}, x)  # no gates
    assert "gate_spread" not in plain and "weight_change_attention" not in plain
