"""alabench.vocabulary: the one definition of kinds, tasks, metrics, protocols and headline conventions,
which the params schema and the method registry must agree with, importable without the rest."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest
from conftest import REPO, tiny_params

from alabench import config, methods, vocabulary
from alabench.vocabulary import HEADLINE, PROTOCOLS, headline_convention


def literal_values(hint: object) -> tuple[str, ...]:
    """The values of a ``Literal`` (inside ``Annotated`` where it is one)."""
    args = typing.get_args(hint)
    return literal_values(args[0]) if typing.get_origin(hint) is typing.Annotated else args


def test_the_params_schema_and_the_registry_speak_the_vocabulary():
    assert literal_values(config.Protocol) == PROTOCOLS
    assert literal_values(config.Convention) == vocabulary.CONVENTIONS
    assert set(methods.TASKS) == set(vocabulary.TASKS)
    assert set(HEADLINE) == set(PROTOCOLS) and set(HEADLINE.values()) <= set(vocabulary.CONVENTIONS)
    assert set(vocabulary.KINDS) <= set(vocabulary.FRAME_KINDS)
    assert set().union(*vocabulary.TASKS_OF_KIND.values()) == set(vocabulary.TASKS)


def test_params_name_the_headline_else_the_protocols_own():
    raw = tiny_params()
    raw["report"]["headline"] = {**raw["report"]["headline"], "mixed": "per_frame"}
    report = config.parse_params(raw, "params.yaml").report
    assert headline_convention("mixed") == "per_clip_mse" and headline_convention("all_blurry") == "per_clip"
    assert headline_convention("mixed", {"mixed": "per_frame"}) == "per_frame"
    assert headline_convention("mixed", {"all_blurry": "per_frame"}) == "per_clip_mse"
    assert headline_convention("mixed", report) == "per_frame"  # the report section of params.yaml
    with pytest.raises(ValueError, match=r"protocol 'sharp_only' has no headline convention.*all_blurry"):
        headline_convention("sharp_only")


def test_addresses_and_formats():
    assert vocabulary.addresses({"deblur", "interpolate"}, "joint")
    assert not vocabulary.addresses({"interpolate"}, "joint") and vocabulary.addresses(["interpolate"], "interp")
    psnr, lpips = vocabulary.METRIC["psnr"], vocabulary.METRIC["lpips"]
    assert (psnr.format(31.234), lpips.format(0.12345), psnr.format(float("nan")), psnr.format(None)) == (
        "31.23", "0.1235", "–", "–")
    assert psnr.higher_is_better and not lpips.higher_is_better


def imported_by(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return set(out.stdout.split())


@pytest.mark.pipeline  # starts processes of its own
def test_the_vocabulary_imports_nothing_and_the_report_no_fetch_code_nor_torch():
    assert {m for m in imported_by("alabench.vocabulary") if m.startswith("alabench") or m == "torch"} == {
        "alabench", "alabench.vocabulary"}
    report = imported_by("stages.report")
    fetch = {m for m in report if m.startswith("alabench.sources")}
    assert fetch == {"alabench.sources", "alabench.sources.manifest"}  # the manifest's reader only
    assert "torch" not in report  # 1.8 CPU-s of every report run (alabench.summary holds what it reads)


@pytest.mark.pipeline  # starts processes of its own
def test_scoring_imports_neither_torchvision_nor_lpips():
    """Importing torchvision (lpips does) imports torch._dynamo: 1.1 s of every evaluate stage's start.
    The LPIPS network and the trunks are built from torch alone (alabench.backbones)."""
    scoring = imported_by("stages.evaluate, alabench.weights, alabench.backbones")
    assert "alabench.weights" in scoring and not {m for m in scoring if m.split(".")[0] in ("torchvision", "lpips")}
