"""What the report may show: a results folder's ``summary.json`` checked before any of its numbers are.

A summary is only a claim: a hand edit, a backup copy or a half-restored folder can say anything. So a
folder is shown only when (1) params.yaml asks for that evaluation (when the caller knows what it
asks for), (2) its summary.json parses against the schema below, (3) its method, data set and protocol
are those of its folder, and (4) its numbers hold up: every mean inside its own bootstrap interval,
no PSNR above the summary's ``psnr_cap``, and every count, mean and per-seed mean equal to what
``alabench.summary.summarize`` recomputes from the folder's frames.csv (the function that wrote
them, run without resampling). Anything else raises :class:`RejectedResult`, which the report lists
instead of the result.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, NonNegativeInt, ValidationError, create_model

from alabench.errors import UserError
from alabench.summary import COLUMNS, EvaluationError, read_frames, summarize
from alabench.layout import FRAMES, RESULTS, SUMMARY
from alabench.vocabulary import CONVENTIONS, FRAME_KINDS, METRICS, TASKS

TOLERANCE = 1e-4  # summary.json holds 6 decimals, frames.csv 6 decimals: far below this, far below a shown digit
SHOWN_PROBLEMS = 3  # a reason names at most this many problems, then how many more there are


def _fix(shown: str) -> str:
    """What to do about a rejected folder: under results/ the pipeline rewrites it, under outside/ stages.score."""
    base = shown.split("/", 1)[0]
    redo = "rerun its evaluation (dvc repro)" if base == RESULTS.name else "score it again (python -m stages.score)"
    return f"{redo}, or move the folder out of {base}/"


class RejectedResult(UserError):
    """A results folder the report must not show: ``path`` (relative to the repo root) and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


# --------------------------------------------------------------------------------------------
# The schema: what alabench.summary.summarize and the evaluate / score stages write.


class _Strict(BaseModel):
    """Numbers must be numbers (no "25.3" strings, no booleans); keys the report does not read may be added."""

    model_config = ConfigDict(strict=True, extra="allow")


class Average(_Strict):
    mean: FiniteFloat | None
    ci: Annotated[list[FiniteFloat | None], Field(min_length=2, max_length=2)]
    seeds: dict[str, FiniteFloat | None] | None = None
    seed_sd: FiniteFloat | None = None


# Every convention x kind x metric stats.averages writes is required: a missing one is named.
_Metrics = create_model("Metrics", __base__=_Strict, **{m: (Average, ...) for m in METRICS})
_Kinds = create_model("Kinds", __base__=_Strict, **{k: (_Metrics, ...) for k in FRAME_KINDS})
Averages = create_model("Averages", __base__=_Strict, **{c: (_Kinds, ...) for c in CONVENTIONS})
Counts = create_model("Counts", __base__=_Strict, **{k: (NonNegativeInt, ...) for k in FRAME_KINDS})
_Subset = create_model("Subset", __base__=Averages, frames=(Counts, ...))


class ByInput(_Strict):
    sharp: _Subset  # type: ignore[valid-type]
    blurry: _Subset  # type: ignore[valid-type]


class Units(_Strict):
    unit: Literal["clip", "video", "photo"]
    count: NonNegativeInt


class Bootstrap(_Strict):
    resamples: NonNegativeInt
    confidence: Annotated[float, Field(gt=0, lt=1)]
    seed: int


class Supplied(_Strict):
    path: str
    sha256: str


class FailedSummary(_Strict):
    """An evaluation that failed: listed with its error, never shown as a result."""

    status: Literal["failed"]
    method: str
    dataset: str | None = None
    protocol: str | None = None
    error: str | None = None


class Summary(_Strict):
    """A finished evaluation: the keys the report reads, with their types."""

    status: Literal["ok"]
    method: str
    dataset: str
    protocol: str
    error: str | None = None
    tasks: Annotated[list[Literal[tuple(sorted(TASKS))]], Field(min_length=1)] | None = None  # type: ignore[misc]
    trains: bool = False
    parameters: NonNegativeInt | None = None
    seconds_per_frame: Annotated[FiniteFloat, Field(ge=0)] | None = None
    device: str | None = None
    outputs_supplied: Supplied | None = None
    clips: NonNegativeInt
    units: Units
    seeds: list[str | int]
    frames: Counts  # type: ignore[valid-type]
    psnr_cap: Annotated[FiniteFloat, Field(gt=0)]
    psnr_capped: Counts  # type: ignore[valid-type]
    bootstrap: Bootstrap
    averages: Averages  # type: ignore[valid-type]
    by_input: ByInput


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(map(str, loc)) or "the whole file"


def parse_summary(path: Path, shown: str) -> dict[str, Any]:
    """``path`` read and validated against the schema (``shown``: its name on the page); the dict as written."""
    try:
        raw = json.loads(path.read_text())
    except OSError as err:
        raise RejectedResult(shown, f"unreadable ({err.strerror or err.__class__.__name__}); {_fix(shown)}") from None
    except ValueError as err:  # not JSON, or not text
        raise RejectedResult(shown, f"unreadable ({err.__class__.__name__}: {err}); {_fix(shown)}") from None
    model = FailedSummary if isinstance(raw, dict) and raw.get("status") == "failed" else Summary
    try:
        model.model_validate(raw)
    except ValidationError as err:
        problems = _listed([f"{_where(e['loc'])}: {e['msg']}" for e in err.errors()])
        raise RejectedResult(shown, f"does not fit the summary.json schema: {problems}; {_fix(shown)}") from None
    return raw


# --------------------------------------------------------------------------------------------
# The checks.


def _listed(problems: list[str]) -> str:
    more = len(problems) - SHOWN_PROBLEMS
    return "; ".join(problems[:SHOWN_PROBLEMS]) + (f" (and {more} more)" if more > 0 else "")


def name_problems(summary: dict[str, Any], method: str, dataset: str, protocol: str) -> list[str]:
    """Where the summary's method, data set or protocol is not its folder's."""
    folders = {"method": method, "dataset": dataset, "protocol": protocol}
    return [f"says {key} {summary[key]!r}, but its folder is for {key} {folder!r}"
            for key, folder in folders.items() if summary.get(key) is not None and summary[key] != folder]


def _cells(summary: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, metric, cell) for every average, overall and per input subset."""
    subsets = ((f"by_input.{s}", summary["by_input"][s]) for s in ("sharp", "blurry"))
    for name, tree in [("averages", summary["averages"]), *subsets]:
        for convention in CONVENTIONS:
            for kind in FRAME_KINDS:
                for metric in METRICS:
                    yield f"{name}.{convention}.{kind}.{metric}", metric, tree[convention][kind][metric]


def number_problems(summary: dict[str, Any]) -> list[str]:
    """Means outside their own interval, and PSNRs above the cap (a number no frame can average to)."""
    problems, cap = [], summary["psnr_cap"]
    for where, metric, cell in _cells(summary):
        mean, (lo, hi) = cell["mean"], cell["ci"]
        values = [mean, lo, hi, *(cell.get("seeds") or {}).values()]
        if metric == "psnr" and any(v is not None and v > cap + TOLERANCE for v in values):
            problems.append(f"{where}: {max(v for v in values if v is not None):g} dB is above its psnr_cap {cap:g} dB")
        if mean is not None and lo is not None and hi is not None and not lo - TOLERANCE <= mean <= hi + TOLERANCE:
            problems.append(f"{where}: mean {mean:g} lies outside its own interval [{lo:g}, {hi:g}]")
    return problems


def _differences(recomputed: Any, written: Any, where: str) -> Iterator[str]:
    """Where ``written`` (summary.json) differs from ``recomputed`` (frames.csv); intervals are not recomputed."""
    if isinstance(recomputed, dict):
        for key, value in recomputed.items():
            if key not in ("ci", "bootstrap", "psnr_cap"):
                yield from _differences(value, written.get(key) if isinstance(written, dict) else None,
                                        f"{where}.{key}".lstrip("."))
        return
    if isinstance(recomputed, list):
        same = isinstance(written, list) and list(map(str, recomputed)) == list(map(str, written))
    elif isinstance(recomputed, (int, float)) and isinstance(written, (int, float)) and not isinstance(written, bool):
        same = math.isclose(recomputed, written, rel_tol=0, abs_tol=TOLERANCE)
    else:
        same = recomputed == written
    if not same:
        yield f"{where} is {written!r}, but frames.csv gives {recomputed!r}"


def frames_problems(summary: dict[str, Any], frames_csv: Path, shown: str) -> list[str]:
    """Every count and mean of ``summary`` recomputed from its frames.csv (``shown``: its name on the page)."""
    if not frames_csv.is_file():
        return [f"{shown} is missing, so its numbers cannot be checked"]
    try:
        frames = read_frames(frames_csv)
        if frames.empty:
            return [f"{shown} has no frame"]
        boot = summary["bootstrap"]
        recomputed = summarize(frames, summary["psnr_cap"], 0, boot["confidence"], boot["seed"])
    except EvaluationError:
        return [f"{shown} does not have the columns {COLUMNS}"]
    except (OSError, ValueError, TypeError, KeyError) as err:
        return [f"{shown} cannot be averaged ({err.__class__.__name__}: {err})"]
    return list(_differences(recomputed, summary, ""))


def unasked_problem(method: str, dataset: str, protocol: str, asked: Collection[tuple[str, str, str]]) -> str | None:
    """Why params.yaml does not ask for this folder (None when it does)."""
    if (dataset, protocol, method) in asked:
        return None
    if method in {m for _, _, m in asked}:
        return (f"params.yaml does not evaluate {method} on {dataset} / {protocol}; "
                f"add it there, or move the folder out of {RESULTS}/")
    return (f"{method} is not a method of params.yaml (evaluate.methods, train.methods, evaluate.cascades, "
            f"evaluate.folders); add it there, or move the folder out of {RESULTS}/")


def checked_summary(root: Path, folder: Path, dataset: str, protocol: str,
                    asked: Collection[tuple[str, str, str]] | None = None) -> dict[str, Any]:
    """``folder``'s summary.json (``folder`` = ``root``/…/<dataset>/<protocol>/<method>) once every check of the
    module docstring passed; ``asked``: the (dataset, protocol, method) params.yaml evaluates, None to
    accept any. Raises RejectedResult naming the folder or file and every problem found."""
    shown = folder.relative_to(root).as_posix()
    if asked is not None and (problem := unasked_problem(folder.name, dataset, protocol, asked)):
        raise RejectedResult(shown, problem)
    summary = parse_summary(folder / SUMMARY, f"{shown}/{SUMMARY}")
    problems = name_problems(summary, folder.name, dataset, protocol)
    if summary["status"] == "ok":
        problems += number_problems(summary) + frames_problems(summary, folder / FRAMES, f"{shown}/{FRAMES}")
    if problems:
        raise RejectedResult(f"{shown}/{SUMMARY}", f"{_listed(problems)}; {_fix(shown)}")
    return summary
