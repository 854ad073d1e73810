"""The method interface: discovery, rejection of broken files, options, and the contract every method keeps."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import tiny_params

from alabench.config import ParamError, parse_params
from alabench.methods import (
    OUTPUT_RANGE,
    Method,
    MethodError,
    MethodFailed,
    build_model,
    check_outputs,
    discover,
    get_method,
    load_trained,
    with_method_options,
)
from stages.methods import listing

FOUND = discover()
PARAMS = parse_params(tiny_params())


def test_every_baseline_file_loads():
    assert FOUND.rejected == {}
    assert {"alanet", "alanet_self", "alanet_cross", "unet", "superslomo", "cain", "blurry_input",
            "flow_interp", "bin", "nafnet"} <= set(FOUND.methods)


def perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Nudge every weight: the zero-initialised output layers would hide the rest of the network."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return model


def assert_contract(method: Method, params) -> None:
    """What every method keeps: shapes, float, finite, in [0, 1], deterministic, windows independent."""
    torch.manual_seed(0)
    model = build_model(method, params).eval()
    frames = torch.rand(2, model.window, 3, 37, 45, generator=torch.Generator().manual_seed(1))  # odd sizes
    with torch.no_grad():
        deblur, interp = check_outputs(frames, model(frames))  # shapes, float, finite, range
        assert deblur.dtype == interp.dtype == torch.float32
        assert deblur.min() >= 0 and deblur.max() <= 1 and interp.min() >= 0 and interp.max() <= 1
        if "deblur" not in method.tasks:  # interpolation only: the inputs are its deblurred frames
            torch.testing.assert_close(deblur, frames)
        if "interpolate" not in method.tasks:  # deblurring only: the neighbours' mean is its interpolation
            torch.testing.assert_close(interp, (frames[:, 1:] + frames[:, :-1]) / 2)
        # Determinism with a seed: the same build and inputs give the same outputs, twice.
        torch.manual_seed(0)
        again = perturbed(build_model(method, params).eval(), 3)
        torch.manual_seed(0)
        model = perturbed(build_model(method, params).eval(), 3)
        first, second = check_outputs(frames, model(frames)), check_outputs(frames, again(frames))
        for a, b in zip(first, second):
            assert torch.equal(a, b)
        # Windows are independent: one window alone gives what it gave inside the batch.
        alone = model(frames[1:])
        torch.testing.assert_close(alone[1], first[1][1:], rtol=1e-4, atol=1e-5)


def assert_learns(method: Method, params) -> None:
    """One optimiser step on a batch changes both outputs, and lowers the loss it stepped on."""
    torch.manual_seed(0)
    model = build_model(method, params)
    g = torch.Generator().manual_seed(2)
    frames = torch.rand(2, max(model.window, params.train_data.window), 3, 32, 32, generator=g)
    targets = torch.rand(frames.shape, generator=g), torch.rand(frames[:, 1:].shape, generator=g)

    def loss_of(outputs):  # smooth, and away from its minimum: a small step must lower it
        return sum(((out - target) ** 2).mean() for out, target in zip(outputs, targets))

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    before = model(frames)
    loss = loss_of(before)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = model(frames)
        for kind, a, b in zip(("deblur", "interp"), before, after):
            if kind == "deblur" and "deblur" not in method.tasks:
                continue  # an interpolation-only method returns its inputs as deblurred frames
            if kind == "interp" and "interpolate" not in method.tasks:
                continue  # a deblurring-only method returns its neighbours' mean as interpolated frames
            assert (a - b).abs().max() > 1e-5, f"{method.name}: one step left the {kind} outputs unchanged"
        assert loss_of(after) < loss, (loss_of(after).item(), loss.item())
    assert all(p.grad is not None for p in model.parameters()), "some weights get no gradient"


# The contract, for every method found in baselines/ (a method a user adds is checked too).
@pytest.mark.parametrize("name", sorted(FOUND.methods))
def test_method_contract(name):
    assert_contract(FOUND.methods[name], PARAMS)


@pytest.mark.parametrize("name", sorted(n for n, m in FOUND.methods.items() if m.trains))
def test_trainable_methods_learn(name):
    assert_learns(FOUND.methods[name], PARAMS)


def write_method(folder: Path, name: str, body: str) -> Path:
    """A method package ``folder/<name>/__init__.py`` holding ``body``."""
    path = folder / name / "__init__.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


ECHO = """
    from torch import nn
    from alabench.methods import TASKS, Method, register

    class Echo(nn.Module):
        window = 3
        def forward(self, frames):
            return frames, frames[:, 1:] * 0.5 + frames[:, :-1] * 0.5

    register(Method(name="{name}", tasks=TASKS, trains=False, build=lambda params, options: Echo()))
"""


def test_a_file_in_a_folder_is_discovered_and_broken_ones_are_reported(tmp_path):
    folder = tmp_path / "baselines"
    write_method(folder, "echo_a", ECHO.format(name="echo_a"))
    write_method(folder, "broken", "import not_a_real_module\n")
    write_method(folder, "typo", "from alabench.methods import Method, register\n"
                                 "register(Method(name='typo', tasks=frozenset({'deblur'}), trains=False))\n")
    write_method(folder, "nothing", "x = 1\n")
    write_method(folder, "misnamed", ECHO.format(name="other_name"))
    (folder / "loose.py").write_text(ECHO.format(name="loose"))
    (folder / "data_only").mkdir()  # a folder without __init__.py (assets, notes): not a method, not an error
    found = discover(folder)
    assert list(found.methods) == ["echo_a"]
    assert found.rejected["broken/"].startswith("ModuleNotFoundError: No module named 'not_a_real_module' "
                                                "(broken/__init__.py:1)")
    assert "missing 1 required positional argument: 'build'" in found.rejected["typo/"]
    assert "defines no method" in found.rejected["nothing/"]
    assert "misnamed/ registers 'other_name'" in found.rejected["misnamed/"]
    assert found.rejected["loose.py"].startswith("a method is a folder: move it to loose/__init__.py")
    with pytest.raises(MethodError, match="Did you mean 'echo_a'") as info:
        get_method("echo_b", found)
    assert "broken/: ModuleNotFoundError" in str(info.value)
    lines, problems = listing(found, None)
    assert problems == 5 and any("broken/: ModuleNotFoundError" in line for line in lines)


def test_the_repo_listing_is_clean():
    lines, problems = listing(FOUND, PARAMS)
    assert problems == 0, "\n".join(lines)
    assert any(line.split()[0] == "flow_interp" for line in lines if line.strip())


def test_options_come_from_params_with_named_errors():
    opts = FOUND.methods["cain"].options_from(PARAMS)
    assert (opts.features, opts.groups, opts.depth) == (8, 1, 3)  # depth: the default beside the method
    bad = dataclasses.replace(PARAMS, methods={**PARAMS.methods, "cain": {"featurs": 8}})
    with pytest.raises(ParamError, match=r"unknown key 'methods.cain.featurs' \(did you mean 'methods.cain.features'"):
        FOUND.methods["cain"].options_from(bad)
    with pytest.raises(ParamError, match=r"unknown key 'methods.cain.featurs'"):
        build_model(FOUND.methods["cain"], bad)
    bad = dataclasses.replace(PARAMS, methods={**PARAMS.methods, "superslomo": {"width": "wide"}})
    with pytest.raises(ParamError, match="methods.superslomo.width = 'wide'"):
        build_model(FOUND.methods["superslomo"], bad)


SCALED = """
    from dataclasses import dataclass
    from torch import nn
    from alabench.methods import TASKS, Method, register

    @dataclass(frozen=True)
    class Options:
        gain: float = 1.0

    class Scaled(nn.Module):
        window = 2
        def __init__(self, options):
            super().__init__()
            self.config = options
        def forward(self, frames):
            return frames * self.config.gain, (frames[:, 1:] + frames[:, :-1]) / 2 * self.config.gain

    register(Method(name="{name}", tasks=TASKS, trains=False, options=Options,
                    build=lambda params, options: Scaled(options)))
"""


def test_a_copied_package_gets_its_own_options_from_the_registry(tmp_path):
    """A package never names itself to read its options: a copy that changes only the registered name
    (as the ALANet family shares ALANetOptions) reads ``methods.<its name>``, not the original's."""
    folder = tmp_path / "baselines"
    write_method(folder, "original", SCALED.format(name="original"))
    write_method(folder, "copied", SCALED.format(name="copied"))
    found = discover(folder)
    params = with_method_options(with_method_options(PARAMS, "original", gain=0.25), "copied", gain=0.5)
    assert build_model(found.methods["original"], params).config.gain == 0.25
    assert build_model(found.methods["copied"], params).config.gain == 0.5
    assert build_model(found.methods["copied"], PARAMS).config.gain == 1.0  # no entry: the defaults
    with pytest.raises(ParamError, match=r"methods.copied.gain = 'loud' is not allowed: must be a number"):
        build_model(found.methods["copied"], with_method_options(PARAMS, "copied", gain="loud"))
    with pytest.raises(ParamError, match=r"unknown key 'methods.copied.gian'"):
        build_model(found.methods["copied"], with_method_options(PARAMS, "copied", gian=2.0))
    # the repo's ALANet family: one Options type, each method its own entry
    alanet, self_only = FOUND.methods["alanet"], FOUND.methods["alanet_self"]
    wider = with_method_options(PARAMS, "alanet_self", width=2 * self_only.options_from(PARAMS).width)
    assert alanet.options_from(wider) == alanet.options_from(PARAMS) != self_only.options_from(wider)
    assert build_model(self_only, wider).config.width == self_only.options_from(wider).width


def test_a_method_without_options_refuses_an_entry_and_old_style_build_is_named(tmp_path):
    echo = discover(write_method(tmp_path / "b", "echo_c", ECHO.format(name="echo_c")).parent.parent).methods["echo_c"]
    assert echo.options_from(PARAMS) is None
    with pytest.raises(ParamError, match=r"methods.echo_c sets \{'gain': 2\}, but echo_c has no options; remove"):
        build_model(echo, with_method_options(PARAMS, "echo_c", gain=2))
    folder = tmp_path / "old"
    old_style = ECHO.format(name="old_style").replace("lambda params, options:", "lambda params:")
    write_method(folder, "old_style", old_style)
    assert ("TypeError: method old_style: build must be a function (params, options) -> nn.Module"
            in discover(folder).rejected["old_style/"])


def test_params_must_give_every_run_method_an_entry():
    data = tiny_params()
    del data["methods"]["blurry_input"]
    with pytest.raises(ParamError, match=r"evaluate.methods names 'blurry_input' but methods.blurry_input is missing"):
        parse_params(data)


def test_contract_violations_are_named():
    frames = torch.rand(1, 3, 3, 8, 8)
    good = (frames, frames[:, 1:])
    check_outputs(frames, good)
    for outputs, message in (
        (frames, "a pair of tensors"),
        ((frames, frames), "interp has shape"),
        ((frames * float("nan"), frames[:, 1:]), "NaN"),
        ((frames * 255, frames[:, 1:]), "deblur spans"),
        (((frames * 255).to(torch.uint8), frames[:, 1:]), "dtype torch.uint8"),
    ):
        with pytest.raises(MethodFailed, match=message):
            check_outputs(frames, outputs)
    assert OUTPUT_RANGE[0] < 0 and OUTPUT_RANGE[1] > 1


def test_a_checkpoint_that_does_not_fit_is_a_user_error(tmp_path):
    method = FOUND.methods["unet"]
    model = build_model(method, PARAMS)
    path = tmp_path / "model.pt"
    torch.save({"method": "unet", "model": model.state_dict()}, path)
    loaded = load_trained(method, PARAMS, path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    wider = with_method_options(PARAMS, "unet", width=0.125)
    with pytest.raises(MethodError, match="do not fit unet as params.yaml builds it now"):
        load_trained(method, wider, path)
    with pytest.raises(MethodError, match="not a checkpoint of alanet"):
        load_trained(FOUND.methods["alanet"], PARAMS, path)
    with pytest.raises(MethodError, match="no checkpoint"):
        load_trained(method, PARAMS, tmp_path / "missing.pt")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "code"])
def test_an_unreadable_checkpoint_fails_the_method_by_name_without_unsafe_advice(tmp_path, damage):
    """Every caller of load_trained (evaluation, the cascade, scripts) gets one message naming the file,
    never torch's advice to load with weights_only=False (which would run a foreign file's code)."""
    import pickle

    method = FOUND.methods["unet"]
    path = tmp_path / "model.pt"
    torch.save({"method": "unet", "model": build_model(method, PARAMS).state_dict()}, path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a torch file" * 10)
    else:  # a pickle that would call a function on load
        path.write_bytes(pickle.dumps(print))
    with pytest.raises(MethodFailed) as err:
        load_trained(method, PARAMS, path)
    assert str(err.value).startswith(f"{path}: cannot be read (") and "delete it" in str(err.value)
    assert "weights_only" not in str(err.value)
