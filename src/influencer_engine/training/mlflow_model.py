"""MLflow "model from code": the registered model is this file plus the bundle folder as an artifact.

MLflow runs this file to build the model, and the model loads the bundle (LightGBM text + manifest, checksums
verified), so nothing is pickled. ``mlflow.pyfunc.load_model("models:/<name>@champion").predict(features)``
returns every KPI with its P10/P50/P90.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import polars as pl
from mlflow.pyfunc import PythonModel  # type: ignore[attr-defined]


class BundleModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from influencer_engine.training.bundle import load_bundle

        self.predictor = load_bundle(Path(context.artifacts["bundle"]))

    # no type hints here: MLflow would read them as an input schema
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Every KPI's forecast and P10/P50/P90 for rows of features (pandas or Polars)."""
        frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        return self.predictor.predict(frame).to_frame().to_pandas()


mlflow.models.set_model(BundleModel())
