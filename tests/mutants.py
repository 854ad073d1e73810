"""A hand-rolled mutation check: break the code on purpose, one change at a time, and show which test fails.

Each mutant below replaces a short snippet of the library (or of a model) by a broken version, in a
temporary copy of this checkout (never the checkout itself), and runs the tests named for it there.
A mutant is *caught* when its tests fail (all of them, for the mutants marked ``all``); the report
prints the first line of each failure, so one can see that a test fails for the right reason.

    python tests/mutants.py              # every mutant, two at a time (--jobs 2)
    python tests/mutants.py fingerprint  # those whose name contains "fingerprint"

Exit status: 0 when every mutant was applied and caught, 1 when one survived, 2 when a snippet
was not found (the code moved on: update the snippet here) or the unbroken copy fails its tests.
The first five mutants are the breaks of issue 26's table, the next nine guard the tests it asked to
strengthen; the next eleven are the breaks of issue 33's table (statistics, ALANet's wiring, the
training recipe, the report's cells, the order of frames, draws across processes); the next three
break DAIN's and MEMC-Net's operations (issue 31); then ALANet's knock-outs and their costs and
verdicts (issue 36) and BIN's test protocol (issue 34).
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 600


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str  # the break, in words
    file: str  # relative to the repo root
    edits: tuple[tuple[str, str], ...]  # (snippet, replacement); each snippet must occur exactly once
    tests: tuple[str, ...]  # pytest node ids that must fail
    all_fail: bool = False  # every named test must fail (one per kind of file), not just one


T = "tests/"
R, M, P = T + "test_stats_reference.py::", T + "test_mechanisms.py::", T + "test_recipe.py::"
C, O = T + "test_report_cells.py::", T + "test_order.py::"
MEMC = T + "test_memc_ops.py::"
MUTANTS = [
    # -- issue 26's table ------------------------------------------------------------------------------
    Mutant("fingerprint-ignored", "a checkpoint made with other params is resumed (fingerprint check -> `if True:`)",
           "alabench/training.py", (('if state.get("fingerprint") == key:', "if True:"),),
           (T + "test_training.py::test_checkpoint_from_other_params_is_not_resumed",)),
    Mutant("validation-baseline-zeros", "the validation's blurry-input baseline scores zeros instead of the inputs",
           "alabench/training.py",
           (('add("input_deblur", inputs,', 'add("input_deblur", torch.zeros_like(inputs),'),
            ('add("input_interp", (inputs[:, :-1] + inputs[:, 1:]) / 2,',
             'add("input_interp", torch.zeros_like(inputs[:, 1:]),')),
           (T + "test_training.py::test_validation_reports_the_blurry_input_baseline_and_its_draw_stays_fixed",)),
    Mutant("lpips-scaling", "LPIPS inputs scaled by /255 (to [0, 1]) instead of /127.5 - 1 (to [-1, 1])",
           "alabench/metrics.py",
           (("a.to(self.device) / 127.5 - 1, b.to(self.device) / 127.5 - 1",
             "a.to(self.device) / 255, b.to(self.device) / 255"),),
           (T + "test_metrics.py::test_lpips_as_evaluation_scores_equals_the_lpips_package_on_real_frames",)),
    Mutant("atomic-path-in-place", "atomic_path writes the file in place (no temporary file, no rename)",
           "alabench/frames.py", (("yield tmp_path\n        os.replace(tmp_path, path)", "yield path"),),
           (T + "test_frames.py::test_a_failed_png_write_leaves_the_old_file_whole",
            T + "test_training.py::test_a_failed_checkpoint_write_leaves_the_old_checkpoint_whole",
            T + "test_blur.py::test_a_failed_manifest_write_leaves_the_old_manifest_whole"), all_fail=True),
    Mutant("step-changes-nothing", "ALANet's residual output detached in value (straight-through): gradients "
           "reach every weight, but no optimiser step can change the outputs",
           "models/alanet.py", (("return self._frames(out + frame if self.config.residual else out)",
                                 "return self._frames(out - out.detach() + frame if self.config.residual else out)"),),
           (T + "test_methods.py::test_trainable_methods_learn",)),
    # -- the weak tests the issue lists ----------------------------------------------------------------
    Mutant("gt-deblur-off-by-one", "the manifest's deblurring target is the frame before the input's centre",
           "alabench/blur.py", (('"gt_deblur": _relative(frames[center], root)',
                                 '"gt_deblur": _relative(frames[center - 1], root)'),),
           (T + "test_blur.py::test_targets_are_the_5th_and_9th_frames_of_the_inputs_window",)),
    Mutant("mixed-draw-shared", "every clip gets the same `mixed` blur draw (the clip name is ignored)",
           "alabench/blur.py", (("np.random.default_rng([seed, zlib.crc32(clip.encode())])",
                                 "np.random.default_rng([seed, 0])"),),
           (T + "test_blur.py::test_mixed_draws_of_different_clips_are_independent",)),
    Mutant("lpips-features-unnormalised", "LPIPS compares the tapped activations without scaling each to unit length",
           "alabench/backbones.py", (("out.append(x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + 1e-10))",
                                      "out.append(x)"),),
           (T + "test_weights.py::test_our_lpips_gives_the_lpips_packages_numbers",)),
    Mutant("vgg16-kernel-transposed", "the converted kernels' height and width swapped (HWIO -> OIWH)",
           "alabench/weights.py", (("kernel.transpose(3, 2, 0, 1)", "kernel.transpose(3, 2, 1, 0)"),),
           (T + "test_weights.py::test_vgg16_features_equal_an_independent_numpy_forward_pass",)),
    Mutant("interp-scored-against-deblur-target", "interpolated frames scored against the deblurring targets",
           "alabench/evaluation.py", (('(clip.gt_deblur if kind == "deblur" else clip.gt_interp)[k][None]',
                                       '(clip.gt_deblur if kind == "deblur" else clip.gt_deblur)[k][None]'),),
           (T + "test_evaluation.py::test_a_method_in_a_temporary_folder_is_discovered_and_evaluated",)),
    Mutant("resume-forgets-epoch-loss", "a resumed run restarts its epoch's running loss at zero",
           "alabench/training.py", (('step, history, epoch_loss = state["step"], state["history"], state["epoch_loss"]',
                                     'step, history = state["step"], state["history"]'),),
           (T + "test_training.py::test_stopped_run_resumes_to_identical_weights",
            T + "test_training.py::test_run_killed_with_sigkill_redoes_the_lost_steps_and_ends_identical"),
           all_fail=True),
    Mutant("no-optimiser-step", "the training loop never steps its optimiser", "alabench/training.py",
           (("            optimizer.step()\n", "            pass\n"),),
           (T + "test_training.py::test_training_changes_the_weights",)),
    Mutant("windows-shifted", "training windows one sharp frame late, inputs and targets alike",
           "alabench/datasets.py", (("centers = [item.first_center + i * self.eq7.stride",
                                     "centers = [item.first_center + 1 + i * self.eq7.stride"),),
           (T + "test_datasets.py::test_sharp_inputs_are_the_centre_frames",)),
    Mutant("validation-draw-per-read", "the validation draw is made afresh at every read (every epoch)",
           "alabench/datasets.py", (("item, blurry = self.items[i]",
                                     "item, blurry = self.items[i][0], np.random.default_rng().random(self.window) < 0.5"),),
           (T + "test_datasets.py::test_validation_draw_is_fixed",
            T + "test_training.py::test_validation_reports_the_blurry_input_baseline_and_its_draw_stays_fixed"),
           all_fail=True),
    Mutant("venv-pth-to-itself", "the .venv's .pth file points at its own site-packages, not the dependency cache",
           "alabench/bootstrap.py", (("site.addsitedir({str(_site_packages(deps))!r})",
                                      "site.addsitedir({str(_site_packages(VENV))!r})"),),
           (T + "test_bootstrap.py::test_venv_sees_the_cached_packages_through_its_pth_and_the_project_editable",)),
    Mutant("venv-not-editable", "the project installed into .venv as a copy, not in editable mode",
           "alabench/bootstrap.py", (('"--no-input", "-e", ROOT)', '"--no-input", ROOT)'),),
           (T + "test_bootstrap.py::test_venv_sees_the_cached_packages_through_its_pth_and_the_project_editable",)),
    # -- issue 33's table: statistics, mechanisms, recipe, report cells, order and determinism ----------
    Mutant("bootstrap-alpha-not-halved", "the bootstrap interval takes alpha at each end, not alpha/2 "
           "(a 90 % interval labelled 95 %)", "alabench/stats.py",
           (("tail = (1 - confidence) / 2", "tail = 1 - confidence"),),
           (R + "test_the_paired_interval_equals_exact_enumeration_of_every_resample",
            R + "test_the_paired_interval_matches_scipy_bootstrap_far_within_the_alpha_over_two_effect",
            R + "test_intervals_cover_the_true_mean_at_their_nominal_rate"), all_fail=True),
    Mutant("per-clip-mse-from-capped-psnr", "per_clip_mse computed from the capped PSNR, not from the MSE",
           "alabench/stats.py",
           (('frames["mse"] = mse_from_psnr(frames["psnr"])\n'
             '        frames["psnr"] = frames["psnr"].clip(upper=psnr_cap)',
             'frames["psnr"] = frames["psnr"].clip(upper=psnr_cap)\n'
             '        frames["mse"] = mse_from_psnr(frames["psnr"])'),),
           (R + "test_every_convention_against_a_hand_computed_example",
            R + "test_the_cap_sets_no_unit_that_is_not_exact"), all_fail=True),
    Mutant("paired-joint-pooled", "the paired joint difference pools deblur and interp frames, not "
           "(deblur + interp) / 2", "alabench/stats.py",
           (('return (_unit_values(scores, convention, "deblur", metric) + _unit_values(scores, convention, "interp",\n'
             '                                                                                  metric)) / 2',
             'return _unit_values(scores, convention, "pooled", metric)'),),
           (R + "test_the_paired_joint_is_the_mean_of_deblur_and_interp_per_unit",)),
    Mutant("recurrent-state-not-reset", "a recurrent method's state is not reset at the start of a clip",
           "alabench/inference.py", (("self._state = None  # a clip starts afresh", "pass"),),
           (M + "test_one_runner_over_two_clips_equals_a_fresh_runner_per_clip",)),
    Mutant("interp-cross-gate-from-own-features", "ALANet's interpolation cross-attention gate reads the "
           "features it gates (self) instead of the other frame's", "models/alanet.py",
           (('self.cross(self.interp_cross["a_given_b"], x_a, x_b)', 'self.cross(self.interp_cross["a_given_b"], x_a, x_a)'),),
           (M + "test_each_variant_computes_eq5_and_eq6_with_its_real_gates",)),
    Mutant("alanet-self-builds-cross", "alanet_self builds the cross-attention modules too (unused)",
           "models/alanet.py",
           (('self.interp_cross = bank(["a_given_b", "b_given_a"] if self.use_cross else [])',
             'self.interp_cross = bank(["a_given_b", "b_given_a"])'),),
           (M + "test_each_variant_has_exactly_its_attention_modules",
            M + "test_every_parameter_of_every_variant_reaches_an_output"), all_fail=True),
    Mutant("train-stage-ignores-method-lr", "the train stage ignores a method's own `lr`", "alabench/training_run.py",
           (('cfg = with_overrides(params.train, "train", options)', "cfg = params.train"),),
           (P + "test_the_optimiser_trains_each_method_at_its_own_learning_rate",)),
    Mutant("epoch-order-seed-plus-epoch", "each epoch's order seeded with seed + epoch (seed 0 epoch 1 = "
           "seed 1 epoch 0)", "alabench/training.py",
           (("manual_seed(self.seed * 1_000_003 + self.epoch)", "manual_seed(self.seed + self.epoch)"),),
           (P + "test_data_orders_differ_across_seed_epoch_pairs",)),
    Mutant("best-mark-unaddressed", "the report marks as best a method that does not address the column's task",
           "alabench/report/tables.py",
           (('ranked = group[group["addressed"] & np.isfinite(group["mean"])]',
             'ranked = group[np.isfinite(group["mean"])]'),),
           (C + "test_every_table2_number_and_best_mark_matches_summary_json",)),
    Mutant("test-inputs-sorted-as-text", "the test clips' inputs sorted by k as text (10 before 2)",
           "alabench/datasets.py",
           (('clip_rows.sort(key=lambda r: int(r["k"]))', 'clip_rows.sort(key=lambda r: r["k"])'),),
           (O + "test_a_clip_of_thirteen_inputs_is_prepared_and_read_in_input_order",
            O + "test_a_clip_of_thirteen_inputs_is_scored_against_its_own_targets"), all_fail=True),
    Mutant("mixed-draw-hash-seeded", "the `mixed` draw seeded with Python's hash() of the clip name (a new "
           "draw in every process)", "alabench/blur.py",
           (("np.random.default_rng([seed, zlib.crc32(clip.encode())])",
             "np.random.default_rng([seed, hash(clip) % 2**32])"),),
           (T + "test_determinism.py::test_every_random_draw_is_the_same_in_processes_with_different_hash_seeds",)),
    # -- issue 31: DAIN's and MEMC-Net's operations in plain PyTorch ------------------------------------
    Mutant("adaptive-warp-kernel-flipped", "the adaptive warp reads its 4x4 kernel transposed (index 4i + j, "
           "not 4j + i)", "models/adaptive_warp.py", (("filters[:, 4 * j + i]", "filters[:, 4 * i + j]"),),
           (MEMC + "test_adaptive_warp_matches_the_loop_reference",)),
    Mutant("adaptive-warp-bilinear-dropped", "the adaptive warp drops the horizontal bilinear weight of its "
           "quadrants", "models/adaptive_warp.py", (("* wy[j] * wx[i]", "* wy[j]"),),
           (MEMC + "test_adaptive_warp_matches_the_loop_reference",)),
    Mutant("projection-depth-ignored", "flow projection ignores its depth weights (a plain average)",
           "models/flow_projection.py", (("inside * weight[:, 0]", "inside.to(flow.dtype)"),),
           (MEMC + "test_flow_projection_matches_the_loop_reference",
            MEMC + "test_depth_weighting_lets_the_nearer_pixel_win"), all_fail=True),
    # -- issue 36: mechanism probes (knock-outs wired to nothing, a cost of the wrong sign) ----------------
    Mutant("knockout-latent-zeroed-wired-to-nothing", "the latent_zeroed knock-out hands the generators the "
           "latent unchanged", "models/alanet.py",
           (('return torch.zeros_like(z) if self.knocked_out == "latent_zeroed" else z', "return z"),),
           (T + "test_probes.py::test_every_knockout_changes_both_paths_of_an_untrained_model_and_is_undone_after",
            T + "test_probes.py::test_latent_zeroed_equals_an_explicitly_zero_latent"), all_fail=True),
    Mutant("knockout-cross-replaces-nothing", "the cross knock-out keeps each neighbour's latent in M_C",
           "models/alanet.py",
           (('return (x_i if self.knocked_out == "cross_knocked_out" else x_j) * gate(x_i)',
             "return x_j * gate(x_i)"),),
           (T + "test_probes.py::test_every_knockout_changes_both_paths_of_an_untrained_model_and_is_undone_after",
            T + "test_probes.py::test_cross_knocked_out_makes_a_frames_deblurring_independent_of_its_neighbours"),
           all_fail=True),
    Mutant("knockout-self-keeps-self-terms", "the self knock-out keeps the M_S terms", "models/alanet.py",
           (('return self.use_self and self.knocked_out != "self_knocked_out"', "return self.use_self"),),
           (T + "test_probes.py::test_every_knockout_changes_both_paths_of_an_untrained_model_and_is_undone_after",
            T + "test_probes.py::test_self_knocked_out_equals_alanet_without_its_self_terms"), all_fail=True),
    Mutant("knockout-gates-fixed-wired-to-nothing", "the gates_fixed knock-out leaves every gate as it is",
           "models/alanet.py", (('if self.knocked_out == "gates_fixed":', "if False:"),),
           (T + "test_probes.py::test_every_knockout_changes_both_paths_of_an_untrained_model_and_is_undone_after",
            T + "test_probes.py::test_gates_fixed_equals_gates_of_one_half"), all_fail=True),
    Mutant("knockout-cost-reversed", "probes.json's cost is knocked out − intact (a part that helps looks harmful)",
           "alabench/probes.py", (("for f in (intact, knocked))", "for f in (knocked, intact))"),),
           (T + "test_probes.py::test_evaluation_writes_probes_whose_costs_recompute_from_both_frames_tables",)),
    Mutant("knockout-verdict-unused-one-sided", "the report calls a part unused when only the upper end of its "
           "interval is under 0.1 dB", "alabench/report/probes.py",
           (("all(-THRESHOLD <= lo and hi <= THRESHOLD", "all(hi <= THRESHOLD"),),
           (T + "test_probes.py::test_verdicts",)),
    # -- issue 34: BIN tested as its authors test it (a fresh window per output) --------------------------
    Mutant("bin-state-carried-by-default", "BIN carries its state along the clip whatever carry_state says "
           "(the authors' fresh window per output is lost)", "baselines/bin/__init__.py",
           (("return (CarriedBIN if options.carry_state else BIN)(options)", "return CarriedBIN(options)"),),
           (T + "test_bin_protocol.py::test_by_default_each_output_is_a_fresh_window_through_both_passes",
            T + "test_bin_protocol.py::test_by_default_an_output_does_not_depend_on_frames_outside_its_window"),
           all_fail=True),
    Mutant("kept-slot-ignored", "clip inference keeps the window's middle slot, not the one the module names "
           "(BIN's first pass, not its second)", "alabench/inference.py",
           (("self.centre = kept_slot(model)", "self.centre = (self.window - 1) // 2"),),
           (T + "test_bin_protocol.py::test_by_default_each_output_is_a_fresh_window_through_both_passes",)),
]


def copy_checkout(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files of this checkout (no .venv, no data; the report's
    templates are code)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        data = rel.startswith(("data/", "results/", "checkpoints/", "reports/")) and not rel.startswith(
            "reports/templates/")
        if src.is_file() and not data:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def pytest(copy: Path, tests: tuple[str, ...]) -> tuple[int, dict[str, str], str]:
    """Run ``tests`` in ``copy``; returns the exit code, {failed node id: first line of why}, the output tail."""
    # `python -m pytest` in the copy puts the copy first on sys.path: it imports its own (broken) code
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-vv", "--tb=short", "-p", "no:cacheprovider", "-rf", *tests],
                            cwd=copy, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    reasons: dict[str, list[str]] = {}  # test function (with its parameters) -> its "E" lines
    current = ""
    for line in result.stdout.splitlines():
        if header := re.fullmatch(r"_+ (\S+) _+", line):
            current = header.group(1)
        elif line.startswith("E ") and current and len(reasons.setdefault(current, [])) < 3:
            if line[1:].strip():
                reasons[current].append(line[1:].strip())
    failed = {}
    for line in result.stdout.splitlines():
        if match := re.match(r"(?:FAILED|ERROR) (\S+)", line):
            node = match.group(1)
            why = reasons.get(node.split("::")[-1], [])
            failed.setdefault(node.split("[")[0], " | ".join(why) or line)
    return result.returncode, failed, "\n".join((result.stdout + result.stderr).splitlines()[-15:])


def apply(copy: Path, mutant: Mutant) -> str | None:
    """Break the copy; returns why it could not be broken, or None."""
    path = copy / mutant.file
    if not path.is_file():
        return f"{mutant.file}: file not found"
    text = path.read_text()
    for snippet, replacement in mutant.edits:
        count = text.count(snippet)
        if count != 1:
            first = snippet.strip().splitlines()[0]
            return f"{mutant.file}: snippet {'not found' if count == 0 else f'found {count} times'}: {first!r}"
        text = text.replace(snippet, replacement)
    path.write_text(text)
    return None


def check(copy: Path, mutant: Mutant) -> tuple[int, str]:
    """Break ``copy`` as ``mutant`` says, run its tests, put the copy back; returns (status, report lines):
    status 0 caught, 1 survived, 2 not applied."""
    lines = [f"{mutant.name}: {mutant.what}"]
    originals = {mutant.file: (copy / mutant.file).read_text()} if (copy / mutant.file).is_file() else {}
    problem = apply(copy, mutant)
    if problem:
        return 2, "\n".join([*lines, f"  NOT APPLIED  {problem}", ""])
    start = time.monotonic()
    try:
        code, failed, tail = pytest(copy, mutant.tests)
    finally:
        for rel, text in originals.items():
            (copy / rel).write_text(text)
    caught = [t for t in mutant.tests if t in failed]
    ok = len(caught) == len(mutant.tests) if mutant.all_fail else bool(caught)
    lines.append(f"  {'CAUGHT' if ok else 'SURVIVED'}  ({time.monotonic() - start:.0f} s)")
    for test in mutant.tests:
        why = f"\n             {failed[test][:240]}" if test in failed else ""
        lines.append(f"    {'failed' if test in failed else 'passed'}  {test}{why}")
    if not ok and code not in (0, 1):
        lines.append("    pytest did not run the tests as expected:\n      " + tail.replace("\n", "\n      "))
    return (0 if ok else 1), "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only the mutants whose name contains one of these")
    parser.add_argument("--jobs", type=int, default=2, help="mutants checked at once, each in its own copy (default 2)")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.names or any(n in m.name for n in args.names)]
    if not mutants:
        print(f"no mutant matches {args.names}; known: {', '.join(m.name for m in MUTANTS)}", file=sys.stderr)
        return 2
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="alabench-mutants-") as tmp:
        copies = [Path(tmp) / f"checkout{i}" for i in range(max(1, min(args.jobs, len(mutants))))]
        for copy in copies:
            copy_checkout(copy)
        probe = subprocess.run([sys.executable, "-c", "import alabench, models; print(alabench.__file__, models.__file__)"],
                               cwd=copies[0], capture_output=True, text=True)
        if not all(Path(p).is_relative_to(copies[0]) for p in probe.stdout.split()) or probe.returncode:
            print(f"the copy does not import its own code: {probe.stdout}{probe.stderr}", file=sys.stderr)
            return 2
        every_test = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
        start = time.monotonic()
        shares = [(copy, every_test[i::len(copies)]) for i, copy in enumerate(copies) if every_test[i::len(copies)]]
        with ThreadPoolExecutor(len(copies)) as pool:  # each share of the named tests in its own copy
            unbroken = list(pool.map(lambda share: pytest(*share), shares))
        for code, _, tail in unbroken:
            if code != 0:
                print(f"the unbroken copy fails its tests ({code}); fix them first:\n{tail}", file=sys.stderr)
                return 2
        print(f"unbroken copy: {len(every_test)} named tests pass ({time.monotonic() - start:.0f} s)\n")
        free: queue.Queue[Path] = queue.Queue()
        for copy in copies:
            free.put(copy)

        def run(mutant: Mutant) -> tuple[int, str]:
            copy = free.get()
            try:
                return check(copy, mutant)
            finally:
                free.put(copy)

        status = 0
        with ThreadPoolExecutor(len(copies)) as pool:
            for result, text in pool.map(run, mutants):  # printed in the table's order as each is done
                print(text, flush=True)
                status = max(status, result)
        verdict = ("every mutant was caught" if status == 0 else "SOME MUTANT SURVIVED" if status == 1 else
                   "SOME MUTANT COULD NOT BE APPLIED (see above)")
        print(f"{verdict} ({len(mutants)} in {time.monotonic() - began:.0f} s)")
        return status


if __name__ == "__main__":
    raise SystemExit(main())
