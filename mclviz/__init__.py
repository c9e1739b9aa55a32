"""mclviz: Masked Contrastive Learning for anomaly detection, and the views to look inside it."""

__version__ = "0.1.0"
