"""``python -m mclviz reproduce``: do the paper's claims hold on our data and budget?

``reproduce(out)`` evaluates every model of the paper's comparison on CIFAR-10 (IND) with
the OOD sets we have (Tiny ImageNet resized to 32x32, Gaussian and uniform noise) and the
open-set split (6 known / 4 unknown CIFAR-10 classes), then writes into ``out/``:

* ``index.html``: the page (tables as HTML, figures as embedded PNG, Figures 1 and 5 also
  as interactive plotly figures; it works offline): a contents list, the verdict on each
  claim with links to the table, figures and CSV rows behind it, the budget and data
  caveats, Tables 1-5 in the paper's shape with the published numbers beside ours and the
  differences, the detector x model table, the open-set table, Figures 1, 4 and 5, and the
  rows behind the claims;
* ``plotly.min.js``: the installed plotly's own plotly.js, which the page loads from
  beside it (no CDN; :mod:`mclviz.plots.interactive`);
* ``table1.csv`` ... ``table5.csv``, ``detectors.csv``, ``openset.csv``, ``claims.csv``,
  ``budget.csv``, ``preset_differences.csv`` and ``results.csv`` (every ``evaluate`` row
  of every model, fractions as ``evaluate`` returns them, its ``detector`` column the
  ``make_detectors`` name; the table CSVs are in percent, as the paper);
* ``fig1_projection``, ``fig4_failures``, ``fig5_scores`` (and ``fig5_scores_nosei``) as
  PDF and PNG.

Each model is evaluated once, with its standard detectors (MCL's class Gaussians in its
SEI settings; MSP for classifiers) and every baseline of ``mclviz.evaluation.BASELINES``
that applies to it (those reading a classifier's logits only on classifiers), all on the
same embeddings. Table 1's ODIN and Mahalanobis rows are ODIN and Lee et al.'s detector
with input pre-processing on ``ce``.

Models come from the shipped checkpoints (``mclviz.zoo``), a folder of checkpoints
(``checkpoints=DIR``: a ``manifest.json`` as ``zoo`` writes it, or ``DIR/<model>/
checkpoint.safetensors`` as ``train=True`` writes it), or are trained first
(``train=True``, into ``out/runs/<model>``, resumable). The open-set model is named
``mcl-openset``: ``mcl`` trained with ``known_classes=[0, 1, 2, 3, 4, 5]``.

The modules, in the order a run uses them:

* :mod:`.compared`: the models of the comparison (:class:`~.compared.ComparedModel`) and
  the settings that address their numbers (:class:`~.compared.Setting`);
* :mod:`.ood`: our OOD sets and the paper's columns they stand for;
* :mod:`.pipeline`: :func:`reproduce`, find or train the checkpoints, load the images
  once, evaluate, write the files;
* :mod:`.claims`: the claims and their bootstrap verdicts;
* :mod:`.tables`: Tables 1-5, the detector x model table, the open-set table, the
  budget, the preset differences;
* :mod:`.figures`: Figures 1, 4 and 5 (static and interactive);
* :mod:`.html`: the page.

And, for ``python -m mclviz score``: :mod:`.gallery`, the HTML gallery of a user's
scored images (:func:`mclviz.evaluation.score_images`).
"""

from .claims import CLAIM_IDS
from .compared import DEFAULT_METHODS, KNOWN_CLASSES, OPEN_SET
from .ood import DEFAULT_OOD
from .pipeline import reproduce

__all__ = ["CLAIM_IDS", "DEFAULT_METHODS", "DEFAULT_OOD", "KNOWN_CLASSES", "OPEN_SET", "reproduce"]
