"""The mutation check (tests/mutants.py) still fits the code: every break applies, every named test exists.

Running the mutants takes minutes (`make mutants`); this only checks, in a second, that none of them
silently stopped applying because the code it breaks has moved on.
"""

from __future__ import annotations

import re
import shutil

import pytest

import mutants
from conftest import REPO


@pytest.mark.parametrize("mutant", mutants.MUTANTS, ids=[m.name for m in mutants.MUTANTS])
def test_each_mutant_applies_to_this_checkout_and_names_real_tests(mutant, tmp_path):
    (tmp_path / mutant.file).parent.mkdir(parents=True)
    shutil.copy2(REPO / mutant.file, tmp_path / mutant.file)
    assert mutants.apply(tmp_path, mutant) is None, "update the snippet in tests/mutants.py"
    assert (tmp_path / mutant.file).read_text() != (REPO / mutant.file).read_text()
    for node in mutant.tests:
        path, name = node.split("::")
        assert re.search(rf"^def {re.escape(name)}\(", (REPO / path).read_text(), re.M), f"{node}: no such test"


def test_a_snippet_that_moved_is_reported_not_skipped(tmp_path):
    (tmp_path / "alabench").mkdir()
    (tmp_path / "alabench" / "training.py").write_text("if state['fingerprint'] == key:\n")
    problem = mutants.apply(tmp_path, mutants.MUTANTS[0])
    assert problem == "alabench/training.py: snippet not found: 'if state.get(\"fingerprint\") == key:'"
    assert mutants.apply(tmp_path, mutants.Mutant("x", "", "missing.py", (("a", "b"),), ())) == "missing.py: file not found"
