"""LightGBM on a Dask cluster (`ie train --engine dask`): the same models, trained data-parallel by lightgbm.dask.

With the trainer ``dask_trainer(client)`` passed to the training pipeline, every KPI model it fits (backtest folds,
conformal calibration, the final fit) trains with ``lightgbm.dask.DaskLGBMRegressor`` on the cluster's workers
instead of in this process: the feature matrix, targets and offsets are split into one row partition per worker and each
worker builds histograms of its rows (LightGBM's ``data`` tree learner). The booster comes back as plain LightGBM
text, so the bundle, its manifest and everything downstream are the same as with the local engine.

Data-parallel trees are not bit-identical to single-process trees: each rank finds the histogram bins of some
features from its own rows. Nor are two Dask runs bit-identical: lightgbm.dask takes the ranks' order from Dask's
bookkeeping (``who_has``), not from the partitions' order, so which rows set which bins can change from run to
run. The backtest metrics of the two engines agree closely (a test checks it); for bit-for-bit reproducible
models, train with the local engine.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import warnings
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from influencer_engine.modeling.estimator import BoosterTrainer

__all__ = ["dask_trainer", "train_booster"]

F64 = npt.NDArray[np.float64]


def dask_trainer(client: Any) -> BoosterTrainer:
    """A booster trainer for ``KPIModel.fit`` and the pipelines above it: boosters train on ``client``'s cluster."""
    trainer: BoosterTrainer = functools.partial(train_booster, client)
    return trainer


def train_booster(
    client: Any,
    params: dict[str, Any],
    x: F64,
    y: F64,
    init: F64,
    names: list[str],
    categorical: list[int],
    rounds: int,
) -> lgb.Booster:
    """Train ``rounds`` trees with ``params`` on the cluster; rows are split evenly across its workers."""
    import dask.array
    import lightgbm.dask as ldask

    # asked of the scheduler on each call: ``client.scheduler_info()`` returns the client's cached identity, which its
    # background refresh (every 2 s) replaces with one that lists no workers, so a fit could see an empty cluster
    addresses = sorted(client.nthreads())
    if not addresses:
        raise RuntimeError("the Dask cluster has no workers: start some (or wait for them) before training on it")
    # one even partition per worker, placed there (not wherever the scheduler puts it), so every worker trains
    bounds = np.linspace(0, len(y), len(addresses) + 1).round().astype(int)

    da: Any = dask.array  # untyped library

    def pinned(values: F64) -> Any:
        pieces = []
        for i, addr in enumerate(addresses):
            piece = np.ascontiguousarray(values[bounds[i] : bounds[i + 1]])
            fut = client.scatter(piece, workers=[addr], broadcast=False, hash=False)
            pieces.append(da.from_delayed(fut, shape=piece.shape, dtype=piece.dtype))
        return da.concatenate(pieces)

    kwargs = {k: v for k, v in params.items() if k not in ("num_threads", "seed", "verbosity")}
    model = ldask.DaskLGBMRegressor(
        client=client,
        n_estimators=rounds,
        random_state=params.get("seed", 0),
        verbosity=-1,
        **kwargs,
    )
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # lightgbm.dask prints a line per fit about worker ports, and warns that it sets each worker's threads
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        model.fit(
            pinned(x),
            pinned(y),
            init_score=pinned(init),
            feature_name=names,
            categorical_feature=categorical,
        )
    # the network settings of this one run (random ports) are not part of the model: drop them from its text
    text = _NETWORK.sub("", model.booster_.model_to_string())
    return lgb.Booster(model_str=text)


_NETWORK = re.compile(r"^\[(local_listen_port|machines|machine_list_filename|num_machines): [^\n]*\]\n", re.M)
