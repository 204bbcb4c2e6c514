"""kamoe: train, look inside, and extract formulas from Kolmogorov-Arnold mixtures of experts."""

import time as _time

__version__ = "0.1.0"
STARTED = _time.time()  # when the package was first imported (CLI time budgets count from here)
