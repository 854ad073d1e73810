"""tests/params.tiny.yaml, the params every tiny test runs: valid against the schema, and in step with
params.yaml, so that a knob added to (or removed from) params.yaml cannot go untested at tiny size."""

from __future__ import annotations

from conftest import TINY_PARAMS, repo_params, tiny_params

from alabench.config import parse_params


def key_paths(tree: dict, prefix: str = "") -> set[str]:
    """Every key of a nested mapping as a dotted path; a method's options are one leaf (see below)."""
    paths = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(value, dict) and prefix != "methods.":
            paths |= key_paths(value, f"{path}.")
    return paths


def test_the_tiny_params_parse():
    params = parse_params(tiny_params())
    assert params.synth.width == 48 and params.train.epochs == 1  # the tiny sizes, not params.yaml's


def test_the_tiny_params_have_the_keys_of_params_yaml():
    """Same sections and keys; under `methods`, every method of params.yaml (each method's options have
    defaults, so the tiny file sets only the sizes, and may hold methods that params.yaml does not run)."""
    repo, tiny = key_paths(repo_params()), key_paths(tiny_params())
    extra_methods = {k for k in tiny - repo if k.startswith("methods.")}
    missing, extra = sorted(repo - tiny), sorted(tiny - repo - extra_methods)
    assert not missing, (f"{TINY_PARAMS.name} lacks {', '.join(missing)}, which params.yaml has: add "
                         f"{'them' if len(missing) > 1 else 'it'} to {TINY_PARAMS} (at a tiny size)")
    assert not extra, (f"{TINY_PARAMS.name} has {', '.join(extra)}, which params.yaml does not: remove "
                       f"{'them' if len(extra) > 1 else 'it'} from {TINY_PARAMS}")


def test_the_key_comparison_sees_a_missing_and_an_extra_key():
    tree = {"train": {"epochs": 1, "lr": 0.1}, "methods": {"alanet": {"width": 1}}}
    assert key_paths(tree) == {"train", "train.epochs", "train.lr", "methods", "methods.alanet"}
    assert key_paths({"train": {"epochs": 1}}) < key_paths(tree)
