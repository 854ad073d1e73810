"""The HTML report: results on disk -> tables (pandas) and figures (matplotlib) -> one jinja2 page.

Inputs are files only (the stage contract): ``results/<dataset>/<protocol>/<method>/summary.json``,
``frames.csv`` and ``samples/samples.csv`` from the evaluate stage, ``training/<dataset>/<method>/
history.csv`` from the train stage, ``data/raw/<dataset>/manifest.csv`` from a fetch stage. Whatever is
missing or failed is named on the page instead of stopping the report, so a partial pipeline still
gives a readable page.

Every table of a protocol uses its headline convention (:func:`alabench.vocabulary.headline_convention`,
set by ``report.headline``: ``per_clip``, BIN's mean over each video's frames then over videos, for
all_blurry; ``per_clip_mse`` for mixed, where sharp inputs returned exactly would otherwise score the
PSNR cap) with the bootstrap interval the evaluate stage wrote.

One module per idea:

* :mod:`~alabench.report.results`: loading results, and what params ask for that is not there;
* :mod:`~alabench.report.tables`: the long tables and paired statistics (best, not separable, who beats whom);
* :mod:`~alabench.report.rows`: those numbers as the template's rows and cells;
* :mod:`~alabench.report.ablation` and :mod:`~alabench.report.probes`: Table 3's pairs with their power,
  and the "Does the attention do anything?" table of knock-out costs;
* :mod:`~alabench.report.figures`: the matplotlib figures;
* :mod:`~alabench.report.provenance`: commit, hashes, params and machine;
* :mod:`~alabench.report.page`: assembling the page and writing it with its assets, CSV tables and metrics.
"""

from alabench.report.page import Report, build_report, write_report
from alabench.report.results import Inputs, Result, compare, load_results
from alabench.report.rows import counterpart_note

__all__ = ["Inputs", "Report", "Result", "build_report", "compare", "counterpart_note", "load_results",
           "write_report"]
