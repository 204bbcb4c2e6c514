"""kamoe: train, look inside, and extract formulas from Kolmogorov-Arnold mixtures of experts."""

__version__ = "0.1.0"
