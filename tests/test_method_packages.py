"""Methods from outside: per-frame functions through frame_method, method packages with helper
modules, and the scaffold's three templates, each kept to the contract every method keeps."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import repo_from, run, tiny_params
from test_evaluation import make_clip
from test_methods import assert_contract, assert_learns, write_method

from alabench.config import ParamError, parse_params
from alabench.evaluation import evaluate_clips
from alabench.inference import infer_clip
from alabench.methods import MethodFailed, build_model, discover, frame_method
from alabench.metrics import Lpips, to_uint8
from alabench.scaffold import KINDS, ScaffoldError, template_kind, write_method_package

PARAMS = parse_params(tiny_params())

# The outside researcher's method of issue 22: numpy functions on (H, W, 3) float arrays, with a
# typed option, counting its calls.
NUMPY_METHOD = """
    from dataclasses import dataclass
    from typing import Annotated

    import numpy as np

    from alabench.config import Range
    from alabench.methods import frame_method, register

    CALLS = {"deblur": 0, "interpolate": 0}


    @dataclass(frozen=True)
    class Options:
        gain: Annotated[float, Range(0.0, 2.0)] = 1.0


    def deblur(x, options):
        CALLS["deblur"] += 1
        return np.clip(x * options.gain, 0, 1)


    def interpolate(a, b, options):
        CALLS["interpolate"] += 1
        return 0.25 * a + 0.75 * b


    register(frame_method("outside", deblur=deblur, interpolate=interpolate, options=Options))
"""


@pytest.fixture(scope="module")
def lpips(weights_dir) -> Lpips:
    return Lpips(weights_dir)


def test_numpy_functions_are_evaluated_each_input_and_pair_once(tmp_path, lpips):
    write_method(tmp_path / "baselines", "outside", NUMPY_METHOD)
    found = discover(tmp_path / "baselines")
    method = found.methods["outside"]
    assert method.tasks == {"deblur", "interpolate"} and not method.trains
    assert_contract(method, PARAMS)
    params = dataclasses.replace(PARAMS, methods={**PARAMS.methods, "outside": {"gain": 0.5}})
    model = build_model(method, params)
    calls = sys.modules[model.deblur_fn.__module__].CALLS  # the package counts its own calls
    calls.update(deblur=0, interpolate=0)
    clips = [make_clip("a", [True, True, False], 4), make_clip("b", [True, True, True, True, True], 5)]
    scored = evaluate_clips(model, clips, lpips, batch=2)
    assert calls == {"deblur": 3 + 5, "interpolate": 2 + 4}  # not once per window slot
    assert len(scored.frames) == 8 + 6
    # the outputs are the functions' own, rounded as the pipeline rounds (np.round)
    inputs = torch.from_numpy(clips[1].inputs).movedim(-1, -3).float() / 255
    out = infer_clip(model, inputs, batch=3)
    x = clips[1].inputs.astype(np.float32) / 255
    np.testing.assert_array_equal(to_uint8(out.deblur), np.round(np.clip(x * 0.5, 0, 1) * 255).astype(np.uint8))
    mid = 0.25 * x[:-1] + 0.75 * x[1:]
    assert np.abs(to_uint8(out.interp).astype(int) - np.round(mid * 255).astype(int)).max() <= 1
    with pytest.raises(ParamError, match=r"unknown key 'methods.outside.gian'"):
        build_model(method, dataclasses.replace(PARAMS, methods={**PARAMS.methods, "outside": {"gian": 1}}))


def test_torch_functions_and_a_single_task():
    only = frame_method("halfway", interpolate=lambda a, b: (a + b) / 2, arrays="torch")
    assert only.tasks == {"interpolate"} and only.options is None
    model = build_model(only, PARAMS)
    frames = torch.rand(1, 2, 3, 5, 7)
    deblur, interp = model(frames)
    torch.testing.assert_close(deblur, frames)
    torch.testing.assert_close(interp, frames.mean(1, keepdim=True))
    with pytest.raises(ValueError, match="give deblur, interpolate or both"):
        frame_method("nothing")
    with pytest.raises(ValueError, match="arrays must be one of"):
        frame_method("odd", deblur=lambda x: x, arrays="jax")


def test_a_function_that_breaks_the_contract_is_named():
    grey = build_model(frame_method("grey", deblur=lambda x: x.mean(-1)), PARAMS)
    with pytest.raises(MethodFailed, match=r"deblur_at raised ValueError: <lambda> returned ndarray of shape "
                                           r"\(6, 8\), expected \(6, 8, 3\) \(an \(H, W, 3\) float array\)"):
        infer_clip(grey, torch.rand(3, 3, 6, 8))


def test_a_package_with_a_helper_module_and_an_asset(tmp_path):
    folder = tmp_path / "baselines"
    write_method(folder, "helped", """
        from pathlib import Path

        from alabench.methods import frame_method, register
        from . import helper
        from .weights import SCALE

        SHIFT = float((Path(__file__).parent / "shift.txt").read_text())
        register(frame_method("helped", deblur=lambda x: helper.scaled(x, SCALE) + SHIFT))
    """)
    (folder / "helped/helper.py").write_text("def scaled(x, s):\n    return x * s\n")
    (folder / "helped/weights.py").write_text("SCALE = 0.5\n")
    (folder / "helped/shift.txt").write_text("0.25\n")
    write_method(folder, "broken_helper", "from . import helper\n")
    (folder / "broken_helper/helper.py").write_text("x = 1\nimport not_a_real_module\n")
    found = discover(folder)
    assert list(found.methods) == ["helped"] and Path(found.methods["helped"].source) == folder / "helped"
    assert found.rejected["broken_helper/"] == ("ModuleNotFoundError: No module named 'not_a_real_module' "
                                                "(broken_helper/helper.py:2)")
    assert_contract(found.methods["helped"], PARAMS)
    frames = torch.rand(1, 2, 3, 4, 4)
    deblur, _ = build_model(found.methods["helped"], PARAMS)(frames)
    torch.testing.assert_close(deblur, frames * 0.5 + 0.25)


@pytest.mark.parametrize("kind", KINDS)
def test_each_scaffold_passes_the_contract(tmp_path, kind):
    path = write_method_package(f"new_{kind}", kind, tmp_path)
    assert path == tmp_path / f"new_{kind}/__init__.py"
    found = discover(tmp_path)
    assert found.rejected == {}
    method = found.methods[f"new_{kind}"]
    assert method.trains == (kind == "trains") and method.options is not None
    assert_contract(method, PARAMS)
    if method.trains:
        assert_learns(method, PARAMS)
    with pytest.raises(ScaffoldError, match=f"new_{kind}/: already exists"):
        write_method_package(f"new_{kind}", kind, tmp_path)


def test_scaffold_refuses_bad_names_and_flags(tmp_path):
    with pytest.raises(ScaffoldError, match="method name 'My-Method': use lower case letters"):
        write_method_package("My-Method", "numpy", tmp_path)
    with pytest.raises(ScaffoldError, match="a numpy method cannot be trained"):
        template_kind("numpy", True)
    assert (template_kind("torch", True), template_kind("torch", False)) == ("trains", "torch")


@pytest.mark.pipeline
def test_the_scaffolds_printed_steps_evaluate_it_alone(prepared_repo, tmp_path):
    """`stages.methods new`, the params lines it prints, its `dvc repro` command: only its stages run."""
    repo = repo_from(prepared_repo, tmp_path / "repo", tiny_params())
    dvc = [sys.executable, "-m", "dvc"]
    run([*dvc, "repro", "blur@synth", "weights"], repo)  # (nothing to run: the data are made)
    out = run([sys.executable, "-m", "stages.methods", "new", "sharpen"], repo).stdout
    assert out.startswith("wrote baselines/sharpen/__init__.py (numpy template)")
    assert "    methods: [blurry_input, sharpen]" in out and "    sharpen: {}" in out
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["evaluate"]["methods"].append("sharpen")
    params["methods"]["sharpen"] = {}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert run([sys.executable, "-m", "stages.methods"], repo).returncode == 0
    command = out.strip().splitlines()[-1].split()
    assert command[:4] == ["python", "-m", "dvc", "repro"]
    ran = run([*dvc, *command[3:-1], command[-1].strip("'")], repo).stdout
    assert {line.split("'")[1] for line in ran.splitlines() if line.startswith("Running stage")} == {
        "check_params", "evaluate@sharpen-synth-all_blurry", "evaluate@sharpen-synth-mixed"}
    summary = json.loads((repo / "results/synth/mixed/sharpen/summary.json").read_text())
    assert summary["status"] == "ok" and summary["tasks"] == ["deblur", "interpolate"]
    # a helper module added to the package makes its stages stale, and only them
    before = set(json.loads(run([*dvc, "status", "--json"], repo).stdout))  # (the stages never run here)
    (repo / "baselines/sharpen/helper.py").write_text("K = 1\n")
    after = set(json.loads(run([*dvc, "status", "--json"], repo).stdout))
    # (check_params reads baselines/ too: a new package must have a valid name before any stage runs)
    assert after - before == {"check_params", "evaluate@sharpen-synth-all_blurry", "evaluate@sharpen-synth-mixed"}


def test_a_package_that_does_not_load_fails_its_evaluation_not_the_stage(tmp_path, monkeypatch):
    """stages.evaluate contains it like any failure of the method (status: failed in its summary)."""
    import stages.evaluate

    write_method(tmp_path, "nope", "import not_a_real_module\n")
    monkeypatch.setattr(stages.evaluate, "discover", lambda: discover(tmp_path))
    with pytest.raises(MethodFailed, match=r"baselines/nope/ does not load: ModuleNotFoundError: No module named "
                                           r"'not_a_real_module' \(nope/__init__.py:1\)"):
        stages.evaluate.checked_method(PARAMS, "nope", "synth", "mixed")
