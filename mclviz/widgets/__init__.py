"""Interactive views for JupyterLab: projections, failure cases, retraining with sliders.

Three ipywidgets UIs, each a thin layer over library calls with a programmatic API, so a
test (or a script) drives them without a browser: set values with ``.set(...)`` or the
widgets' ``.value``, call ``.update()`` / ``.run()`` / ``.next()``, read ``.figure`` /
``.figures`` / ``.result``.

* :class:`ProjectionExplorer` (:mod:`.projection`): t-SNE / UMAP of several models'
  embeddings side by side (paper Figure 1), with the OOD set to overlay.
* :class:`FailureViewer` (:mod:`.failures`): OOD images scored as in-distribution and
  misclassified test images, with their nearest training images (paper Figure 4), page by
  page.
* :class:`RetrainPanel` (:mod:`.retrain`): sliders for alpha, beta, lambda, tau and the
  method that retrain a small run and redraw the projection, the score distribution
  (Figure 5), the AUROC and the loss curve. Fast mode retrains the projection head on
  cached backbone features (:func:`mclviz.evaluation.retrain_head`); full mode trains the
  whole network in a background thread (:func:`mclviz.evaluation.retrain_full`) with a
  live loss curve, a progress bar and a Stop button. The mode is named on screen.

Figures from a :class:`mclviz.evaluation.RetrainResult` (:mod:`.figures`):
:func:`result_projection`, :func:`result_scores`, :func:`loss_curve`.

ipywidgets is imported only when a UI is built (an ``ImportError`` says what to install);
importing this package has no side effect. Plotly figures are shown through the
``application/vnd.plotly.v1+json`` mimetype inside ``ipywidgets.Output`` widgets
(JupyterLab renders it with plotly's extension), so no ``FigureWidget`` / anywidget is
needed (:mod:`._display`).
"""

from .failures import FailureViewer
from .figures import loss_curve, result_label, result_projection, result_scores
from .operating_point import OperatingPointExplorer
from .projection import ProjectionExplorer
from .retrain import RetrainPanel

__all__ = [
    "FailureViewer",
    "OperatingPointExplorer",
    "ProjectionExplorer",
    "RetrainPanel",
    "loss_curve",
    "result_label",
    "result_projection",
    "result_scores",
]
