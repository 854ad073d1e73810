"""params.yaml validation: every bad key or value stops with a message naming it."""

from __future__ import annotations

import copy
import re
import shutil
import typing

import pytest
import yaml
from conftest import REPO, repo_params

from alabench.blur import Eq7
from alabench.config import ParamError, PhotoName, load_params, parse_params
from alabench.profiles import apply_overlay
from alabench.schema import merge
from alabench.methods import get_method
from alabench.sources.photos import SOURCES
from alabench.training import with_overrides


def test_repo_params_validate():
    params = load_params(REPO / "params.yaml")
    assert params.blur.window == 11 and params.blur.stride == 8  # the paper's eq. 7 setting
    assert params.blur.datasets == ("synth",)


def test_photo_names_match_the_photos_shipped():
    assert set(typing.get_args(PhotoName)) == set(SOURCES)


def _error(mutate) -> str:
    data = copy.deepcopy(repo_params())
    mutate(data)
    with pytest.raises(ParamError) as info:
        parse_params(data, "params.yaml")
    return str(info.value)


FOLDER = {"method": "bin", "dataset": "synth", "protocol": "all_blurry", "path": "submissions/bin"}


@pytest.mark.parametrize("mutate, expected", [
    (lambda p: p["synth"].update(num_clips=3), ["unknown key 'synth.num_clips'", "allowed here"]),
    (lambda p: p["blur"].update(strde=8), ["unknown key 'blur.strde'", "did you mean 'blur.stride'"]),
    (lambda p: p.update(trian={}), ["unknown key 'trian'"]),
    (lambda p: p["synth"].pop("seed"), ["missing key 'synth.seed'"]),
    (lambda p: p["synth"].update(width="wide"), ["synth.width = 'wide'", "an integer"]),
    (lambda p: p["synth"].update(width=True), ["synth.width = True", "an integer"]),
    (lambda p: p["synth"].update(width=8), ["synth.width = 8", ">= 32"]),
    (lambda p: p["blur"].update(p_blur=1.5), ["blur.p_blur = 1.5", "<= 1.0"]),
    (lambda p: p["blur"].update(rounding="floor"), ["blur.rounding = 'floor'", "one of truncate, round"]),
    (lambda p: p["blur"].update(window=10), ["blur.window = 10", "odd"]),
    (lambda p: p["blur"].update(stride=7), ["blur.stride = 7", "even"]),
    (lambda p: p["blur"].update(datasets=["synth", "vimeo"]), ["blur.datasets[1] = 'vimeo'", "one of"]),
    (lambda p: p["synth"].update(speed=[2.0, 1.0]), ["synth.speed", "min <= max"]),
    (lambda p: p["synth"].update(speed=[1.0]), ["synth.speed = [1.0]", "exactly 2"]),
    (lambda p: p["synth"].update(test_photos=["astronaut", "cat"]), ["synth.test_photos[1] = 'cat'"]),
    (lambda p: p["synth"].update(test_photos=["astronaut"]), ["synth.test_photos", "2 to"]),
    (lambda p: p["synth"].update(train=5), ["synth.train = 5", "a mapping with keys"]),
    (lambda p: p["train_data"].update(hflip="yes"), ["train_data.hflip = 'yes'", "true or false"]),
    (lambda p: p["weights"].update(download="yes"), ["weights.download = 'yes'", "true or false"]),
    (lambda p: p.pop("weights"), ["missing key 'weights'"]),
    (lambda p: p["evaluate"].update(folders={"x": {**FOLDER, "protocl": "mixed"}}),
     ["unknown key 'evaluate.folders.x.protocl'", "did you mean 'evaluate.folders.x.protocol'"]),
    (lambda p: p["evaluate"].update(folders={"x": {**FOLDER, "protocol": "some"}}),
     ["evaluate.folders.x.protocol = 'some'", "one of all_blurry, mixed"]),
    (lambda p: p["evaluate"].update(folders={"X y": FOLDER}), ["evaluate.folders key = 'X y'", "[a-z0-9][a-z0-9_-]*"]),
    (lambda p: p["evaluate"].update(folders={"x": {**FOLDER, "method": "BIN"}}), ["evaluate.folders.x.method = 'BIN'"]),
    (lambda p: p["evaluate"].update(folders={"x": FOLDER, "y": FOLDER}),
     ["evaluate.folders.x and evaluate.folders.y both give bin on synth/all_blurry"]),
    (lambda p: p["evaluate"].update(folders={"x": {**FOLDER, "method": "alanet"}}),
     ["evaluate.folders.x.method = 'alanet' is also a method"]),
    (lambda p: p["evaluate"].update(folders={"x": {**FOLDER, "dataset": "adobe240"}}),
     ["evaluate.folders.x.dataset = 'adobe240' is not in blur.datasets"]),
    (lambda p: p["evaluate"].update(protocols=["mixed"], folders={"x": FOLDER}),
     ["evaluate.folders.x.protocol = 'all_blurry' is not in evaluate.protocols"]),
    # lists that would make no stage, or one stage twice: refused before anything runs (issue 35)
    (lambda p: p["evaluate"].update(protocols=[]), ["evaluate.protocols is empty: nothing would be evaluated"]),
    (lambda p: (p["train"].update(methods=[]), p["evaluate"].update(methods=[])),
     ["train.methods and evaluate.methods are empty", "nothing would be evaluated"]),
    (lambda p: p["blur"].update(datasets=[]), ["blur.datasets is empty"]),
    (lambda p: p["train"].update(datasets=[]), ["train.datasets is empty, so train.methods ['alanet'"]),
    (lambda p: p["train"].update(methods=["alanet", "unet", "alanet"]),
     ["train.methods = ['alanet', 'unet', 'alanet'] is not allowed: alanet is listed twice"]),
    (lambda p: p["evaluate"].update(protocols=["mixed", "mixed"]), ["evaluate.protocols", "mixed is listed twice"]),
    (lambda p: p["evaluate"].update(cascades=[{"deblur": "unet", "interpolate": "cain"}] * 2),
     ["evaluate.cascades", "cascade_unet_cain is listed twice"]),
    (lambda p: (p["evaluate"]["methods"].append("cascade_unet_cain"), p["methods"].update(cascade_unet_cain={}),
                p["evaluate"].update(cascades=[{"deblur": "unet", "interpolate": "cain"}])),
     ["evaluate.cascades[0] makes cascade_unet_cain, also a method of train.methods or evaluate.methods"]),
    (lambda p: p["evaluate"].update(cascades=[{"deblur": "unet", "interpolate": "cain"}],
                                    folders={"x": {**FOLDER, "method": "cascade_unet_cain"}}),
     ["evaluate.folders.x.method = 'cascade_unet_cain' is also a method of train.methods, evaluate.methods or "
      "evaluate.cascades"]),
    (lambda p: p["train"].update(seeds=["0; touch x"]), ["train.seeds[0] = '0; touch x'", "an integer"]),
    # the evaluate stages print in their protocol's headline convention (a DVC param of theirs)
    (lambda p: (p["report"].update(protocols=["all_blurry"]), p["report"]["headline"].pop("mixed")),
     ["report.headline has no convention for evaluate.protocols ['mixed']"]),
])
def test_bad_params_are_named(mutate, expected):
    message = _error(mutate)
    assert message.startswith("params.yaml: ")
    for part in expected:
        assert part in message, message


def test_top_level_must_be_a_mapping():
    with pytest.raises(ParamError, match="top level must be a mapping"):
        parse_params([1, 2], "params.yaml")


def test_unreadable_yaml_is_named(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("synth: [unclosed\n")
    with pytest.raises(ParamError, match=f"{bad}: not valid YAML"):
        load_params(bad)


def test_paper_overlay_merges_and_validates(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    apply_overlay(REPO / "params.paper.yaml", params)
    merged = load_params(params)
    overlay = yaml.safe_load((REPO / "params.paper.yaml").read_text())
    assert merged.train.epochs == overlay["train"]["epochs"] == 200 and merged.methods["alanet"]["width"] == 1.0
    assert (merged.video.width, merged.video.height) == (640, 352)  # the paper's frame size (real footage)
    assert merged.report.datasets == tuple(overlay["report"]["datasets"]) == ("adobe240", "youtube240")
    assert merged.blur.window == 11 and merged.synth.width == load_params(REPO / "params.yaml").synth.width  # untouched


def test_cpu_long_overlay_runs_table3_and_the_joint_competitors(tmp_path):
    """The cpu-long profile merges into the CPU defaults: Table 3's four, the competitors at their
    CPU sizes, a cascade whose components it trains, and the ALANet options of params.yaml kept."""
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    apply_overlay(REPO / "params.cpu-long.yaml", params)
    merged, default = load_params(params), load_params(REPO / "params.yaml")
    assert {"alanet", "alanet_self", "alanet_cross", "unet", "bin", "nafnet"} <= set(merged.train.methods)
    assert merged.train.seeds == (0, 1, 2) and merged.synth.test.clips == 24
    assert merged.methods["alanet"] == default.methods["alanet"]  # deep merge: only bin and nafnet are added
    assert merged.methods["bin"]["width"] < 1 and merged.methods["nafnet"]["width"] < 32  # CPU sizes
    for cascade in merged.evaluate.cascades:
        assert {cascade.deblur, cascade.interpolate} <= set(merged.train.methods)
    # every method's training window fits the rendered train clips (BIN's own 6 inputs: 51 frames)
    eq7 = Eq7.from_params(merged.blur)
    for name in merged.train.methods:
        method = get_method(name)
        window = with_overrides(merged.train_data, "train_data", method.options_from(merged)).window
        assert eq7.span(window) <= merged.synth.train.frames, (name, window)
    assert with_overrides(merged.train_data, "train_data", get_method("bin").options_from(merged)).window == 6


def test_overlay_with_a_bad_value_leaves_params_untouched(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    before = params.read_bytes()
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("blur: {window: 12}\n")
    with pytest.raises(ParamError, match="blur.window = 12"):
        apply_overlay(overlay, params)
    assert params.read_bytes() == before


@pytest.mark.parametrize("pair, message", [
    ({"test": "youtube240", "train": "youtube240"}, "evaluate.transfer[0].train = 'youtube240' is not in train.datasets"),
    ({"test": "adobe240", "train": "adobe240"}, "evaluate.transfer[0].test = 'adobe240' must be in blur.datasets"),
])
def test_a_transfer_pair_must_name_a_trained_and_an_untrained_data_set(pair, message):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw = merge(merge(raw, yaml.safe_load((REPO / "params.paper.yaml").read_text())), {"evaluate": {"transfer": [pair]}})
    with pytest.raises(ParamError, match=re.escape(message)):
        parse_params(raw)
