"""Released checkpoints in their authors' key layout (alabench.released; issue 34 point 2, issue 31 point 3).

No file of the authors is at hand here: each state dict is generated from the recorded manifest of
their model's keys and shapes (alabench/released_manifests/, written by bench/authors_models.py from
their code). That it computes what their model computes was measured by bench/authors_equivalence.py.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_params

from alabench.config import parse_params
from alabench.errors import UserError
from alabench.methods import build_model, get_method, parameter_count, with_method_options
from alabench.released import (
    MANIFEST_DIR,
    RELEASES,
    ReleasedWeightsError,
    build_published,
    load_released,
    manifest,
    manifest_state,
    mapping_digest,
    port_key,
    published_options,
    release,
    to_port,
)

PARAMS = parse_params(tiny_params())
METHODS = sorted(RELEASES)
# The authors' parameter counts (bench/authors_models.py; also tests/test_dain_memcnet.py, test_joint_competitors.py)
AUTHORS_PARAMETERS = {"superslomo": 39_610_473, "cain": 42_780_432, "nafnet": 17_111_907, "bin": 11_441_668,
                      "dain": 24_031_656, "memcnet": 67_260_469}
UNUSED = {"dain": 2 * 2 * 4 * 4 + 2}  # PWC-Net's deconv2: built by the authors, never called, not in the port


@pytest.fixture(scope="module")
def ports() -> dict[str, torch.nn.Module]:
    torch.set_num_threads(1)
    return {}


def port(ports: dict, method: str) -> torch.nn.Module:
    if method not in ports:
        ports[method] = build_published(method, PARAMS)
    return ports[method]


def compact(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One distinct value per tensor, stored as a single element (stride 0): files of bytes, not
    hundreds of MB, that still tell every key apart. Keys the authors' model shares keep one value."""
    values: dict[int, float] = {}
    return {k: torch.full((), values.setdefault(id(v), float(len(values) + 1)), dtype=v.dtype).expand(v.shape)
            for k, v in state.items()}


def saved(tmp_path, method: str, state: dict[str, torch.Tensor], name: str = "released.pth"):
    path = tmp_path / name
    torch.save(release(method).wrap(state), path)
    return path


@pytest.mark.parametrize("method", METHODS)
def test_manifest_is_the_authors_model_at_its_published_size(method):
    """The recorded layout holds the authors' parameter count; the port at the published size holds as many."""
    keys = manifest(method)
    seen: set[str] = set()
    total = 0
    for key, (shape, dtype) in keys.items():
        weight = port_key(method, key) or key  # the same for two names of one shared weight
        if dtype.is_floating_point and weight not in seen and "running_" not in key:
            total += torch.Size(shape).numel()
        seen.add(weight)
    assert total == AUTHORS_PARAMETERS[method]
    assert parameter_count(build_published(method, PARAMS)) == AUTHORS_PARAMETERS[method] - UNUSED.get(method, 0)


@pytest.mark.parametrize("method", METHODS)
def test_random_state_in_the_authors_layout_maps_onto_every_weight_of_the_port(method, ports):
    model = port(ports, method)
    state = manifest_state(method, torch.Generator().manual_seed(0))
    mapped = to_port(method, state, "generated")
    own = model.state_dict()
    assert set(mapped) == set(own)
    for key, value in state.items():
        target = port_key(method, key)
        if target:
            assert mapped[target].shape == own[target].shape
            assert torch.equal(mapped[target], value), key


@pytest.mark.parametrize("method", METHODS)
def test_released_file_loads_into_the_port_key_by_key(method, ports, tmp_path):
    """Through the file, its container and load_released: each port weight ends up holding its
    authors' tensor (every tensor a distinct value, so a key sent to the wrong place shows)."""
    model = port(ports, method)
    state = compact(manifest_state(method))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    load_released(method, model, saved(tmp_path, method, state))
    assert not model.training
    after = model.state_dict()
    for key, value in state.items():
        target = port_key(method, key)
        if target:
            assert torch.equal(after[target], value.to(after[target].dtype)), key
    assert any(not torch.equal(before[k], after[k]) for k in after)


def test_loaded_weights_change_the_outputs(tmp_path):
    """The smallest published model (BIN) computes something else once the released weights are in."""
    model = build_published("bin", PARAMS).eval()
    frames = torch.rand(1, 6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(frames)[1]
        load_released("bin", model, saved(tmp_path, "bin", manifest_state("bin", torch.Generator().manual_seed(2))))
        after = model(frames)[1]
    assert not torch.allclose(before, after)


def test_a_renamed_key_is_refused_naming_it(tmp_path, ports):
    state = compact(manifest_state("nafnet"))
    state["intro.weights"] = state.pop("intro.weight")
    path = saved(tmp_path, "nafnet", state)
    with pytest.raises(ReleasedWeightsError) as err:
        load_released("nafnet", port(ports, "nafnet"), path)
    message = str(err.value)
    assert str(path) in message and "'intro.weights'" in message and "'intro.weight'" in message
    assert "\n" not in message and isinstance(err.value, UserError)


@pytest.mark.parametrize("method", METHODS)
def test_a_key_unknown_to_the_layout_or_a_missing_key_is_refused(method):
    state = manifest_state(method)
    first = next(iter(state))
    with pytest.raises(ReleasedWeightsError, match=f"'{first}x' is not in {method}'s released layout"):
        to_port(method, {**state, f"{first}x": state[first]}, "f.pth")
    del state[first]
    with pytest.raises(ReleasedWeightsError, match=f"f.pth: key '{first}' is missing"):
        to_port(method, state, "f.pth")


@pytest.mark.parametrize("method", METHODS)
def test_a_wrong_shape_is_refused_naming_key_and_shapes(method):
    state = manifest_state(method)
    key = next(k for k, v in state.items() if v.dim() == 4)
    state[key] = state[key].transpose(0, 1)
    with pytest.raises(ReleasedWeightsError, match=rf"f.pth: key '{key}' has shape .* released model has"):
        to_port(method, state, "f.pth")


def test_a_port_built_at_another_size_is_refused(tmp_path):
    small = build_model(get_method("superslomo"), with_method_options(PARAMS, "superslomo", width=0.25))
    path = saved(tmp_path, "superslomo", compact(manifest_state("superslomo")))
    with pytest.raises(ReleasedWeightsError, match=r"does not fit the model .* published options, methods.superslomo: "
                                                   r"\{'width': 1.0\}"):
        load_released("superslomo", small, path)


def test_a_port_with_other_parts_is_refused(tmp_path):
    """BIN without its ConvLSTM cells has no place for theirs; a port with a part the file lacks is refused too."""
    path = saved(tmp_path, "bin", compact(manifest_state("bin")))
    options = {**published_options("bin"), "recurrent": False}
    plain = build_model(get_method("bin"), with_method_options(PARAMS, "bin", **options))
    with pytest.raises(ReleasedWeightsError, match=r"'cells.0.gates.weight' .* does not fit the model \(no such key\)"):
        load_released("bin", plain, path)
    more = build_published("bin", PARAMS)
    more.register_buffer("extra", torch.zeros(1))
    with pytest.raises(ReleasedWeightsError, match=r"the model's 'extra' is not in the released weights \(1 keys\)"):
        load_released("bin", more, path)


@pytest.mark.parametrize("method, container", [
    ("cain", lambda state: state),  # a bare state dict where CAIN's file holds {'state_dict': ...}
    ("nafnet", lambda state: {"state_dict": state}),  # NAFNet's holds {'params': ...}
    ("superslomo", lambda state: state),  # Super SloMo's holds {'state_dictFC': ..., 'state_dictAT': ...}
    ("bin", lambda state: [state]),
    ("dain", lambda state: {"epoch": 3}),
])
def test_a_file_with_an_unexpected_container_is_refused(method, container, tmp_path, ports):
    path = tmp_path / "other.pth"
    torch.save(container(compact(manifest_state(method))), path)
    with pytest.raises(ReleasedWeightsError, match=rf"{path}: not {method}'s released checkpoint \(expected .*\); "
                                                   rf"download it from http"):
        load_released(method, port(ports, method), path)


class Payload:
    """An object a pickle would rebuild: weights_only loading must refuse it unrun."""


def test_a_file_of_other_objects_and_a_missing_file_are_refused(tmp_path, ports):
    path = tmp_path / "code.pth"
    torch.save({"params": Payload()}, path)
    with pytest.raises(ReleasedWeightsError, match=rf"{path}: cannot be read .*download nafnet's released weights "):
        load_released("nafnet", port(ports, "nafnet"), path)
    with pytest.raises(ReleasedWeightsError, match="no such file; download nafnet's released weights from https://"):
        load_released("nafnet", port(ports, "nafnet"), tmp_path / "absent.pth")


def test_a_dataparallel_prefix_is_accepted_and_shared_weights_must_agree(tmp_path, ports):
    state = compact(manifest_state("bin"))
    path = saved(tmp_path, "bin", {f"module.{k}": v for k, v in state.items()}, "dp.pth")
    load_released("bin", port(ports, "bin"), path)
    # model1_2 is model1_1 in the authors' BIN: one weight under two names
    state["model.model1_2.SFENet1.weight"] = state["model.model1_2.SFENet1.weight"] + 1
    with pytest.raises(ReleasedWeightsError, match="'model.model1_1.SFENet1.weight' and "
                                                   "'model.model1_2.SFENet1.weight' are one shared weight"):
        to_port("bin", state, "f.pth")


def test_a_file_from_before_batchnorm_counters_loads(tmp_path, ports):
    """MEMC-Net's release was saved by torch 0.2, before BatchNorm's num_batches_tracked existed."""
    state = {k: v for k, v in compact(manifest_state("memcnet")).items() if not k.endswith("num_batches_tracked")}
    assert len(state) < len(manifest("memcnet"))
    load_released("memcnet", port(ports, "memcnet"), saved(tmp_path, "memcnet", state))


VERIFIED = json.loads((MANIFEST_DIR / "verified.json").read_text())


def test_the_mappings_whose_outputs_were_compared_are_recorded():
    """BIN, DAIN and MEMC-Net gave their authors' outputs (bench/authors_equivalence.py --record);
    the others' ports differ from their authors' code in a layer, whatever the mapping."""
    assert {"bin", "dain", "memcnet"} <= set(VERIFIED) <= set(RELEASES)
    assert all(entry["max_abs_diff"] <= 1e-5 for entry in VERIFIED.values())


@pytest.mark.parametrize("method", sorted(VERIFIED))
def test_the_key_mapping_is_the_one_that_was_compared(method):
    """A change of alabench/released.py's rules that was not compared again fails here: rerun
    `python -m bench.authors_equivalence --record --method M --authors-code PATH`."""
    assert mapping_digest(method) == VERIFIED[method]["mapping_sha256"]


def test_alanet_and_unknown_methods_are_refused_with_the_reason():
    with pytest.raises(ReleasedWeightsError, match="alanet.weights: .*18 attention layers.*train it instead"):
        published_options("alanet")
    with pytest.raises(ReleasedWeightsError, match="no released checkpoint is known for flow_interp"):
        published_options("flow_interp")


# ------------------------------------------------------------------------------------------------
# methods.<m>.weights: the released checkpoint evaluated like any method, with no train stage.


def released_params(tmp_path, method: str = "bin") -> tuple:
    """Tiny params whose ``methods.<method>`` is its published size with ``weights`` naming a file in the
    authors' layout, and the method moved from train.methods (if there) to evaluate.methods."""
    state = compact(manifest_state(method, torch.Generator().manual_seed(0)))
    path = saved(tmp_path, method, state)
    raw = tiny_params()
    raw["methods"][method] = {**published_options(method), "weights": str(path)}
    raw["train"]["methods"] = [m for m in raw["train"]["methods"] if m != method]
    raw["evaluate"]["methods"] = [*raw["evaluate"]["methods"], method]
    return parse_params(raw), state


def test_a_method_with_released_weights_is_evaluated_untrained_with_them(tmp_path):
    from stages.evaluate import checked_method

    params, state = released_params(tmp_path)
    method = checked_method(params, "bin", "synth", "all_blurry")  # listed in evaluate.methods: accepted
    assert not method.trains and "released weights" in method.description
    model = build_model(method, params)
    expected = to_port("bin", state, "file")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    assert not model.training


def test_only_a_declared_weights_field_loads_and_unset_it_changes_nothing(tmp_path):
    from alabench.released import as_configured, released_weights, weights_of

    plain = get_method("bin")
    assert as_configured(plain, PARAMS) is plain  # weights '' (the default): trained here as before
    assert weights_of(None) == ""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Named:  # a field merely called `weights` is no released checkpoint
        weights: str = "x.pth"

    @dataclasses.dataclass(frozen=True)
    class Declared:
        weights: str = released_weights()

    assert weights_of(Named()) == "" and weights_of(Declared("x.pth")) == "x.pth"


def test_released_weights_in_train_methods_or_a_missing_file_are_refused_by_name(tmp_path):
    from alabench.methods import MethodError
    from alabench.training_run import prepare_training

    params, _ = released_params(tmp_path)
    raw = tiny_params()
    raw["methods"]["bin"] = dict(params.methods["bin"])
    raw["train"]["methods"] = [*raw["train"]["methods"], "bin"]
    with pytest.raises(MethodError, match=r"methods\.bin\.weights is set.*move it from train\.methods to evaluate"):
        prepare_training(parse_params(raw), "bin", "synth", 0, tmp_path)
    raw = tiny_params()
    raw["methods"]["bin"] = {**published_options("bin"), "weights": str(tmp_path / "absent.pth")}
    raw["evaluate"]["methods"] = [*raw["evaluate"]["methods"], "bin"]
    raw["train"]["methods"] = [m for m in raw["train"]["methods"] if m != "bin"]
    from stages.evaluate import checked_method

    method = checked_method(parse_params(raw), "bin", "synth", "all_blurry")
    with pytest.raises(UserError, match=r"absent\.pth: no such file; download bin's released weights from https://"):
        method.build(parse_params(raw), method.options_from(parse_params(raw)))


def test_alanet_weights_are_refused_before_anything_is_built(tmp_path):
    from alabench.released import as_configured

    raw = tiny_params()
    raw["methods"]["alanet"] = {**raw["methods"]["alanet"], "weights": "ckpt.pth"}
    with pytest.raises(UserError, match="methods.alanet"):
        as_configured(get_method("alanet"), parse_params(raw))
