"""The one value every loader returns: train/test arrays in model space, names, scaling, truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from kamoe.errors import KamoeError


class DataError(KamoeError, ValueError):
    """A problem with user data or a dataset request, with a message that names the fix.

    The UI shows ``str(err)`` in ``st.error``; the CLI prints it on one line and exits with 2.
    """


@dataclass(frozen=True)
class Affine:
    """Per-column affine scaling: ``scaled = (raw - offset) / scale``."""

    offset: np.ndarray
    scale: np.ndarray

    @staticmethod
    def identity(n: int) -> Affine:
        return Affine(np.zeros(n), np.ones(n))

    @staticmethod
    def standard(values: np.ndarray) -> Affine:
        """Zero mean, unit variance per column (columns along the last axis)."""
        flat = values.reshape(-1, values.shape[-1])
        scale = flat.std(axis=0)
        return Affine(flat.mean(axis=0), np.where(scale > 0, scale, 1.0))

    @staticmethod
    def minmax(values: np.ndarray, low: float = -1.0, high: float = 1.0) -> Affine:
        """Map each column's observed [min, max] onto [low, high]."""
        flat = values.reshape(-1, values.shape[-1])
        lo, hi = flat.min(axis=0), flat.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        scale = span / (high - low)
        return Affine(lo - low * scale, scale)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return (raw - self.offset) / self.scale

    def invert(self, scaled: np.ndarray) -> np.ndarray:
        return scaled * self.scale + self.offset

    def to_dict(self) -> dict[str, list[float]]:
        return {"offset": np.asarray(self.offset).tolist(),
                "scale": np.asarray(self.scale).tolist()}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Affine:
        return Affine(np.asarray(d["offset"], dtype=float), np.asarray(d["scale"], dtype=float))


@dataclass
class Dataset:
    """Train/test arrays in model space plus everything needed to go back to the raw world.

    Shapes: tabular ``X`` is (n, d); sequences (n, T, d); images (n, H, W).
    Regression ``y`` is (n, n_targets) float, scaled by ``y_scaling``;
    classification ``y`` is (n,) int class indices and ``y_scaling`` is None.
    ``x_scaling`` acts on the last axis of ``X`` (per feature).
    """

    name: str
    task: Literal["regression", "classification"]
    kind: Literal["tabular", "sequence", "image"]
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    target_names: list[str]
    x_scaling: Affine
    y_scaling: Affine | None = None
    class_names: list[str] | None = None
    # Ground truth in RAW variables (sympy expression over Symbols named as feature_names).
    formula: Any = None
    # Optional known group per sample (true regime, class, ...) for routing breakdowns.
    groups_train: np.ndarray | None = None
    groups_test: np.ndarray | None = None
    group_name: str | None = None
    description: str = ""
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    # Raw targets kept as generated, {"train": (n, t), "test": (m, t)}: scaling and back loses
    # tiny values next to a large mean (exp(-100) becomes 0 or -1e-17), and a formula search
    # in log space needs them. raw_y returns these when present.
    exact_y: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ shapes
    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])

    @property
    def output_dim(self) -> int:
        if self.task == "classification":
            return len(self.class_names or np.unique(self.y_train))
        return int(self.y_train.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[-1])

    # ------------------------------------------------------------------ raw views
    def raw_X(self, split: Literal["train", "test"] = "train") -> np.ndarray:
        """Inputs in original units."""
        X = self.X_train if split == "train" else self.X_test
        return self.x_scaling.invert(X)

    def raw_y(self, split: Literal["train", "test"] = "train") -> np.ndarray:
        """Targets in original units (class indices for classification)."""
        if self.exact_y is not None and split in self.exact_y:
            return self.exact_y[split]
        y = self.y_train if split == "train" else self.y_test
        return y if self.y_scaling is None else self.y_scaling.invert(y)

    def to_raw_y(self, y_scaled: np.ndarray) -> np.ndarray:
        """Map model-space predictions back to original target units."""
        return y_scaled if self.y_scaling is None else self.y_scaling.invert(y_scaled)

    def frame(self, split: Literal["train", "test"] = "train", max_rows: int | None = None):
        """A pandas frame of raw features and target (tabular data; sequences use the last step)."""
        import pandas as pd

        X = self.raw_X(split)
        if X.ndim == 3 and self.kind == "sequence":
            X = X[:, -1, :]
        X = X.reshape(len(X), -1)
        names = self.feature_names if X.shape[1] == len(self.feature_names) else [
            f"x{i}" for i in range(X.shape[1])
        ]
        df = pd.DataFrame(X, columns=names)
        y = self.raw_y(split)
        if self.task == "classification":
            labels = self.class_names or [str(c) for c in range(self.output_dim)]
            df[self.target_names[0]] = [labels[int(c)] for c in y]
        else:
            for j, t in enumerate(self.target_names):
                df[t] = y[:, j]
        if max_rows is not None:
            df = df.head(max_rows)
        return df

    def summary(self) -> dict[str, Any]:
        """Short plain description for the CLI and the UI."""
        return {
            "name": self.name,
            "task": self.task,
            "kind": self.kind,
            "n_train": int(len(self.X_train)),
            "n_test": int(len(self.X_test)),
            "input_shape": list(self.input_shape),
            "features": list(self.feature_names),
            "targets": list(self.target_names),
            "formula": None if self.formula is None else str(self.formula),
        }
