"""Where things live on disk and what DVC calls the stages that write them: the one place that spells a
path under ``data/``, ``checkpoints/``, ``training/``, ``results/`` or ``outside/``, and every stage name
dvc.yaml generates (``train@<method>-<dataset>-<seed>``, ``evaluate_cascade@cascade<i>-…``), so stages,
evaluation, submission and the report cannot drift apart. Paths are relative to the repository root
(the functions a reader of another tree needs take ``root`` to anchor them). Torch-free and importing
nothing of the project's, so that a stage that needs one folder name does not import, and depend on,
the code that fills the folder.

dvc.yaml's ``foreach`` / ``matrix`` blocks name their stages as DVC does (``dvc.parsing``): ``<stage>@<key>``
for a mapping, ``<stage>@<item>`` for a list of names, and for a matrix the values joined by ``-`` in
the block's key order, a mapping entry standing as ``<key><index>`` (``pair0``, ``cascade1``).
tests/test_stage_deps.py checks :func:`stage_names` and the folders against DVC's own resolution of
dvc.yaml; tests/test_docs.py checks that the pages state no other path or stage name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for the annotations: importing the schema would make layout depend on it
    from alabench.config import Params

# --------------------------------------------------------------------------------------------
# Folders, relative to the repository root.

PARAMS_FILE = Path("params.yaml")   # every stage's knobs (alabench.config)
DATA = Path("data")
SHARP = DATA / "sharp"        # data/sharp/<dataset>/<split>/<clip>/%05d.png (synth, fetch@<dataset>)
RAW = DATA / "raw"            # data/raw/<dataset>/manifest.csv and downloads (fetch@<dataset>)
PREPARED = DATA / "prepared"  # data/prepared/<dataset>/test/<protocol>/ (blur@<dataset>)
WEIGHTS = DATA / "weights"    # ImageNet backbones (weights)
CACHE = DATA / "cache"        # rebuildable: decoded clips, resumable training states, the params check
PARAMS_CHECKED = CACHE / "params.checked"   # check_params's output, every stage's first dependency
CHECKPOINTS = Path("checkpoints")   # checkpoints/<dataset>/<method>/seed<k>/model.pt (train@…)
TRAINING = Path("training")         # training/<dataset>/<method>/seed<k>/{history.csv, metrics.json} (train@…)
RESULTS = Path("results")           # results/<dataset>/<protocol>/<method>/ (evaluate*@…)
OUTSIDE = Path("outside")  # scores of `python -m stages.score`: git-ignored, not DVC outputs, marked on the page
REPORTS = Path("reports")           # the report stage's page, tables and DVC metrics

# Files inside those folders.
MODEL = "model.pt"          # a checkpoint: weights, config and history
HISTORY = "history.csv"     # a training run's validation, one row per checkpoint
TRAIN_METRICS = "metrics.json"   # its last row (a cached out: DVC's run cache keeps the train stage)
MANIFEST = "manifest.csv"   # a prepared protocol's clips, and a fetched data set's videos
FRAMES = "frames.csv"       # an evaluation's per-frame scores ...
SUMMARY = "summary.json"    # ... its averages, intervals and provenance ...
SAMPLES = "samples"         # ... and its saved outputs, listed in samples/samples.csv
SAMPLES_CSV = "samples.csv"
# The mechanism probes of one evaluation (alabench.probes), inside its results folder: the costs in
# PROBES, each knock-out's frame scores (frames.csv's columns) in PROBE_FRAMES/<knock-out>.csv. The
# evaluate stage writes them after the folder itself.
PROBES = "probes.json"
PROBE_FRAMES = "probes"


def sharp_dir(dataset: str, split: str | None = None, root: Path = Path(".")) -> Path:
    """data/sharp/<dataset>[/<split>]: the 240 fps ground truth, one folder of PNGs per clip."""
    folder = Path(root) / SHARP / dataset
    return folder / split if split else folder


def raw_dir(dataset: str, root: Path = Path(".")) -> Path:
    """data/raw/<dataset>: a fetched data set's downloads and its manifest.csv."""
    return Path(root) / RAW / dataset


def prepared_dir(dataset: str, protocol: str | None = None, root: Path = Path(".")) -> Path:
    """data/prepared/<dataset>, or with ``protocol`` the test inputs data/prepared/<dataset>/test/<protocol>."""
    folder = Path(root) / PREPARED / dataset
    return folder / "test" / protocol if protocol else folder


def clip_cache(dataset: str) -> Path:
    """data/cache/clips/<dataset>: decoded training clips (rebuilt when missing)."""
    return CACHE / "clips" / dataset


def train_state(dataset: str, method: str, seed: int) -> Path:
    """data/cache/train/<dataset>-<method>-seed<k>.pt: where a killed training run resumes from."""
    return CACHE / "train" / f"{dataset}-{method}-seed{seed}.pt"


def checkpoint_dir(dataset: str, method: str, seed: int | None = None, root: Path = Path(".")) -> Path:
    """checkpoints/<dataset>/<method>[/seed<k>]: a trained method's checkpoints (every seed without ``seed``)."""
    folder = Path(root) / CHECKPOINTS / dataset / method
    return folder if seed is None else folder / f"seed{seed}"


def checkpoint(dataset: str, method: str, seed: int, root: Path = Path(".")) -> Path:
    """checkpoints/<dataset>/<method>/seed<k>/model.pt, the train stage's output."""
    return checkpoint_dir(dataset, method, seed, root) / MODEL


def training_dir(dataset: str, method: str, seed: int, root: Path = Path(".")) -> Path:
    """training/<dataset>/<method>/seed<k>: the run's history.csv (a DVC plot) and metrics.json."""
    return Path(root) / TRAINING / dataset / method / f"seed{seed}"


def histories(dataset: str, root: Path = Path("."), recorded: bool = False) -> Iterator[tuple[str, str, Path]]:
    """(method, ``seed<k>``, history.csv) of every training run of ``dataset`` whose checkpoint exists
    (``recorded``: every history, as in a run record under docs/runs/, which keeps no checkpoints)."""
    for history in sorted((Path(root) / TRAINING / dataset).glob(f"*/seed*/{HISTORY}")):
        method, seed = history.parent.parent.name, history.parent.name
        if recorded or (checkpoint_dir(dataset, method, root=root) / seed / MODEL).is_file():
            yield method, seed, history


def result_dir(dataset: str, protocol: str, method: str, root: Path = Path("."), base: Path = RESULTS) -> Path:
    """results/<dataset>/<protocol>/<method> (``base`` = OUTSIDE for a score made by hand)."""
    return Path(root) / base / dataset / protocol / method


def probe_frames(result_dir: Path, knockout: str) -> Path:
    """frames.csv of the method scored with ``knockout`` active."""
    return Path(result_dir) / PROBE_FRAMES / f"{knockout}.csv"


# --------------------------------------------------------------------------------------------
# Stage names, as DVC generates them from dvc.yaml.

CHECK_PARAMS, SYNTH, WEIGHTS_STAGE, REPORT = "check_params", "synth", "weights", "report"


def fetch_stage(dataset: str) -> str:
    return f"fetch@{dataset}"   # foreach over fetch.datasets (a mapping: its key)


def blur_stage(dataset: str) -> str:
    return f"blur@{dataset}"    # foreach over blur.datasets


def train_stage(method: str, dataset: str, seed: int) -> str:
    return f"train@{method}-{dataset}-{seed}"   # matrix method × dataset × seed


def evaluate_stage(method: str, dataset: str, protocol: str) -> str:
    return f"evaluate@{method}-{dataset}-{protocol}"   # matrix evaluate.methods × blur.datasets × protocols


def evaluate_trained_stage(method: str, dataset: str, protocol: str) -> str:
    return f"evaluate_trained@{method}-{dataset}-{protocol}"   # matrix train.methods × train.datasets × protocols


def evaluate_transfer_stage(method: str, pair: int, protocol: str) -> str:
    return f"evaluate_transfer@{method}-pair{pair}-{protocol}"   # ``pair``: the index in evaluate.transfer


def evaluate_cascade_stage(cascade: int, dataset: str, protocol: str) -> str:
    return f"evaluate_cascade@cascade{cascade}-{dataset}-{protocol}"   # ``cascade``: the index in evaluate.cascades


def tune_cascade_stage(cascade: int, dataset: str, seed: int) -> str:
    return f"tune_cascade@cascade{cascade}-{dataset}-{seed}"   # the cascade's interpolator fine-tuned (its twin)


def evaluate_cascade_tuned_stage(cascade: int, dataset: str, protocol: str) -> str:
    return f"evaluate_cascade_tuned@cascade{cascade}-{dataset}-{protocol}"   # the twin scored


def evaluate_folder_stage(key: str) -> str:
    return f"evaluate_folder@{key}"   # foreach over evaluate.folders


def repro(*stages: str) -> str:
    """The command that (re)makes ``stages``, in order."""
    return " && ".join(f"dvc repro {stage}" for stage in stages)


@dataclass(frozen=True)
class Expected:
    """One evaluation that params.yaml asks for: the result folder it fills and the stage that fills it;
    ``seeds``: the training seeds it averages, each seed's checkpoints those of ``trained``, (method,
    data set) pairs (a transfer's are of its train data set, a cascade's of both its components)."""

    dataset: str
    protocol: str
    method: str
    stage: str
    seeds: tuple[int, ...] = ()
    trained: tuple[tuple[str, str], ...] = ()
    tuned: int | None = None  # a cascade's twin: the index of its evaluate.cascades entry (tune_cascade makes it)

    @property
    def folder(self) -> Path:
        return result_dir(self.dataset, self.protocol, self.method)

    @property
    def command(self) -> str:
        return repro(self.stage)

    def train_stages(self, seeds: tuple[int, ...] | None = None) -> list[str]:
        """The train stages that make its checkpoints (of ``seeds``; all its seeds by default), or for a
        cascade's twin the tune stages (each reruns its components' train stages first, if need be)."""
        seeds = self.seeds if seeds is None else seeds
        if self.tuned is not None:
            return [tune_cascade_stage(self.tuned, self.dataset, s) for s in seeds]
        return [train_stage(m, d, s) for s in seeds for m, d in self.trained]


def evaluations(params: Params) -> list[Expected]:
    """Every evaluation the evaluate stages of ``params`` run, in dvc.yaml's order: one result folder each."""
    found = []
    for method in params.evaluate.methods:
        found += [Expected(d, p, method, evaluate_stage(method, d, p))
                  for d in params.blur.datasets for p in params.evaluate.protocols]
    seeds = params.train.seeds
    for method in params.train.methods:
        found += [Expected(d, p, method, evaluate_trained_stage(method, d, p), seeds, ((method, d),))
                  for d in params.train.datasets for p in params.evaluate.protocols]
    for method in params.train.methods:
        found += [Expected(pair.test, p, method, evaluate_transfer_stage(method, i, p), seeds, ((method, pair.train),))
                  for i, pair in enumerate(params.evaluate.transfer) for p in params.evaluate.protocols]
    for i, c in enumerate(params.evaluate.cascades):
        found += [Expected(d, p, c.name, evaluate_cascade_stage(i, d, p), seeds, ((c.deblur, d), (c.interpolate, d)))
                  for d in params.train.datasets for p in params.evaluate.protocols]
    for i, c in enumerate(params.evaluate.cascades):  # dvc repro of the twin's evaluation also tunes it first
        found += [Expected(d, p, c.tuned_name, evaluate_cascade_tuned_stage(i, d, p), seeds,
                           ((c.deblur, d), (c.interpolate, d)), tuned=i) for d in params.train.datasets
                  for p in params.evaluate.protocols]
    found += [Expected(f.dataset, f.protocol, f.method, evaluate_folder_stage(key))
              for key, f in params.evaluate.folders.items()]
    return found


def expected_results(params: Params) -> list[Expected]:
    """The evaluations of ``params`` within what the report shows (report.datasets, report.protocols):
    the report names each one that has no result, with the command that makes it."""
    shown = set(params.report.datasets), set(params.report.protocols)
    return [e for e in evaluations(params) if e.dataset in shown[0] and e.protocol in shown[1]]


def stage_names(params: Params) -> list[str]:
    """Every stage name dvc.yaml generates for ``params`` (what ``dvc stage list`` prints)."""
    return [CHECK_PARAMS, SYNTH, *map(fetch_stage, params.fetch.datasets), *map(blur_stage, params.blur.datasets),
            WEIGHTS_STAGE,
            *(train_stage(m, d, s) for m in params.train.methods for d in params.train.datasets
              for s in params.train.seeds),
            *(tune_cascade_stage(i, d, s) for i in range(len(params.evaluate.cascades))
              for d in params.train.datasets for s in params.train.seeds),
            *(e.stage for e in evaluations(params)), REPORT]
