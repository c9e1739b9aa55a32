"""Figures of the paper, rebuilt from plain arrays: projections, scores, failures, SEI.

Every function takes tensors / numpy arrays / DataFrames (never a model) and returns a
figure object: a plotly ``go.Figure`` for the interactive views, a matplotlib ``Figure``
for print. Nothing is shown or written; ``export(fig, path)`` writes PDF, SVG or PNG.

- :mod:`.projection`: ``project`` / ``projection_figure``, t-SNE or UMAP of embeddings
  (paper Figure 1).
- :mod:`.distributions`: ``score_distribution``, histograms and densities of scores
  (Figure 5), with the 95%-TPR threshold and the AUROC; ``drawn_range``, the range drawn
  without extreme outliers.
- :mod:`.failures`: ``nearest_neighbours`` / ``failure_cases`` / ``failure_gallery``
  (Figure 4).
- :mod:`.sei`: ``sei_table`` / ``sei_figure``, SEI ablations, paper vs official variant
  (Tables 4, 5), as a dot plot.
- :mod:`.one_class`: ``one_class_figure``, the one-class AUROC per normal class.
- :mod:`.tables`: ``table_view`` / ``headline_table`` (result tables for the eye: human
  names, percent with one decimal) and ``data_note`` (which images a result used).
- :mod:`.export`: ``export`` / ``export_many``, at each figure's print size.
- :mod:`.style`: ``PALETTE``, ``OOD_COLOR``, ``FONT_PT`` / ``FONT_PX``, ``paper_rc()``,
  ``plotly_template()``, ``house_style()``, ``PLOTLY_CONFIG``, ``text_width`` / ``wrap_label``: the house
  style. Plotly figures take their container's width on screen and keep a print size
  for export. Names of data sets, methods and detectors: :mod:`mclviz.names`.
- ``comparison_table``: our numbers vs the published ones (re-exported from
  ``mclviz.paper_numbers``).

Scores follow mclviz's direction: higher = more in-distribution (paper Eq. 14).

matplotlib figures are created through pyplot and closed at once: pyplot no longer holds
them, so they never auto-display at the end of a Jupyter cell (no double display) and
never accumulate; a notebook draws one when it is the cell's value.
"""

from ..paper_numbers import comparison_table
from .distributions import drawn_range, score_distribution
from .export import export, export_many
from .failures import failure_cases, failure_gallery, nearest_neighbours
from .one_class import one_class_figure
from .projection import project, projection_figure
from .sei import sei_figure, sei_table
from .style import (
    COLUMN_WIDTH,
    FONT_PT,
    FONT_PX,
    OOD_COLOR,
    PALETTE,
    PAPER_RC,
    PLOTLY_CONFIG,
    TEXT_WIDTH,
    class_name,
    house_style,
    paper_rc,
    plotly_template,
    text_width,
    wrap_label,
)
from .tables import data_note, headline_table, table_view

__all__ = [
    "COLUMN_WIDTH",
    "FONT_PT",
    "FONT_PX",
    "OOD_COLOR",
    "PALETTE",
    "PAPER_RC",
    "PLOTLY_CONFIG",
    "TEXT_WIDTH",
    "class_name",
    "comparison_table",
    "data_note",
    "drawn_range",
    "export",
    "export_many",
    "failure_cases",
    "failure_gallery",
    "headline_table",
    "house_style",
    "nearest_neighbours",
    "one_class_figure",
    "paper_rc",
    "plotly_template",
    "project",
    "projection_figure",
    "score_distribution",
    "sei_figure",
    "sei_table",
    "table_view",
    "text_width",
    "wrap_label",
]
