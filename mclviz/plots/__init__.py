"""Figures of the paper, rebuilt from plain arrays: projections, scores, failures, SEI.

Every function takes tensors / numpy arrays / DataFrames (never a model) and returns a
figure object: a plotly ``go.Figure`` for the interactive views, a matplotlib ``Figure``
for print. Nothing is shown or written; ``export(fig, path)`` writes PDF, SVG or PNG.

- :mod:`.projection`: ``project`` / ``projection_figure``, t-SNE or UMAP of embeddings
  (paper Figure 1).
- :mod:`.distributions`: ``score_distribution``, histograms and densities of scores
  (Figure 5), with the 95%-TPR threshold and the AUROC.
- :mod:`.failures`: ``nearest_neighbours`` / ``failure_cases`` / ``failure_gallery``
  (Figure 4).
- :mod:`.sei`: ``sei_table`` / ``sei_figure``, SEI ablations, paper vs official variant
  (Tables 4, 5).
- :mod:`.export`: ``export`` / ``export_many``.
- :mod:`.style`: ``PALETTE``, ``OOD_COLOR``, ``paper_rc()``, ``plotly_template()``, the
  house style.
- ``comparison_table``: our numbers vs the published ones (re-exported from
  ``mclviz.paper_numbers``).

Scores follow mclviz's direction: higher = more in-distribution (paper Eq. 14).

matplotlib figures are created through pyplot and closed at once: pyplot no longer holds
them, so they never auto-display at the end of a Jupyter cell (no double display) and
never accumulate; a notebook draws one when it is the cell's value.
"""

from ..paper_numbers import comparison_table
from .distributions import score_distribution
from .export import export, export_many
from .failures import failure_cases, failure_gallery, nearest_neighbours
from .projection import project, projection_figure
from .sei import sei_figure, sei_table
from .style import (
    COLUMN_WIDTH,
    OOD_COLOR,
    PALETTE,
    PAPER_RC,
    TEXT_WIDTH,
    class_name,
    paper_rc,
    plotly_template,
)

__all__ = [
    "COLUMN_WIDTH",
    "OOD_COLOR",
    "PALETTE",
    "PAPER_RC",
    "TEXT_WIDTH",
    "class_name",
    "comparison_table",
    "export",
    "export_many",
    "failure_cases",
    "failure_gallery",
    "nearest_neighbours",
    "paper_rc",
    "plotly_template",
    "project",
    "projection_figure",
    "score_distribution",
    "sei_figure",
    "sei_table",
]
