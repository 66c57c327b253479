"""The Universal Scalability Law (Gunther): throughput against concurrency, and its fit.

``X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))`` (N. J. Gunther, *Guerrilla
Capacity Planning*, Springer 2007, chapter 4): ``lambda`` is the throughput of one worker with no
contention, ``sigma`` the contention (serialized fraction), ``kappa`` the coherency (crosstalk)
cost; with ``kappa > 0`` throughput peaks at ``N* = sqrt((1 - sigma) / kappa)`` and then falls.
Used by ``harborbench tune`` to model its load sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["FIT_MIN_POINTS", "FIT_R2_MIN", "UslFit", "fit_usl", "usl_throughput"]

#: A USL fit below this coefficient of determination is reported as poor.
FIT_R2_MIN = 0.9
#: The USL has 3 parameters: fewer distinct concurrency levels than this cannot test a fit.
FIT_MIN_POINTS = 4


def usl_throughput(
    concurrency: ArrayLike, lambda_ops: float, sigma: float, kappa: float
) -> NDArray[np.float64]:
    """Throughput predicted by the Universal Scalability Law.

    ``X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))`` (N. J. Gunther,
    *Guerrilla Capacity Planning*, Springer 2007, chapter 4).

    Args:
        concurrency: N, float array of any shape (requests in flight).
        lambda_ops: throughput of one worker with no contention, ops/s.
        sigma: contention (serialization) coefficient, >= 0.
        kappa: coherency (crosstalk) coefficient, >= 0.

    Returns:
        X(N) in ops/s, same shape as ``concurrency``.
    """
    n = np.asarray(concurrency, dtype=np.float64)
    result: NDArray[np.float64] = lambda_ops * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
    return result


class UslFit(BaseModel):
    """A fitted USL curve (parameters ``None`` when no fit was possible).

    Attributes:
        points: number of (N, throughput) points used.
        lambda_ops, sigma, kappa: see :func:`usl_throughput`.
        peak_concurrency: ``N* = sqrt((1 - sigma) / kappa)`` (Gunther); ``None`` if kappa is 0,
            if N* lies below 1 (throughput falls from one worker) or beyond 4x the largest
            measured N (an extrapolation).
        peak_throughput_ops: X(N*).
        r_squared: coefficient of determination of the fit on the points.
        good: the fit may be trusted (>= 4 levels and R^2 >= 0.9).
        note: why the fit is not good, or empty.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: int
    lambda_ops: float | None = None
    sigma: float | None = None
    kappa: float | None = None
    peak_concurrency: float | None = None
    peak_throughput_ops: float | None = None
    r_squared: float | None = None
    good: bool = False
    note: str = ""

    def predict(self, concurrency: float) -> float | None:
        """X(N) in ops/s from a good fit; ``None`` when the fit is poor or missing."""
        if not self.good or self.lambda_ops is None or self.sigma is None or self.kappa is None:
            return None
        return float(usl_throughput(concurrency, self.lambda_ops, self.sigma, self.kappa))

    def peak_text(self) -> str:
        """Why there is no peak, when there is none: κ = 0, a peak far beyond the data, or a
        curve falling from one worker on (the fitted peak lies below N = 1)."""
        if "no peak within" in self.note:
            return f"none within {PEAK_EXTRAPOLATION_MAX:g}x the measured range"
        if "no peak at N >= 1" in self.note:
            return "none (throughput falls from N = 1)"
        return "none (κ = 0)"


#: A fitted peak beyond this multiple of the largest measured concurrency is not reported.
PEAK_EXTRAPOLATION_MAX = 4.0


def fit_usl(concurrency: Sequence[float], throughput_ops: Sequence[float]) -> UslFit:
    """Fit the USL to measured points by non-linear least squares.

    Method: ``scipy.optimize.curve_fit`` (trust-region reflective) with the bounds
    ``lambda, sigma, kappa >= 0`` and ``sigma <= 1``, started from ``lambda = max(X/N)``.

    Args:
        concurrency: N of each point (>= 1).
        throughput_ops: measured ops/s of each point, same length.

    Returns:
        The fit; ``good`` is false, with the reason in ``note``, when there are fewer than
        :data:`FIT_MIN_POINTS` distinct levels, the solver fails, or R^2 < :data:`FIT_R2_MIN`.
    """
    from scipy.optimize import curve_fit

    n = np.asarray(concurrency, dtype=np.float64)
    x = np.asarray(throughput_ops, dtype=np.float64)
    levels = len(np.unique(n))
    if levels < FIT_MIN_POINTS:
        return UslFit(
            points=len(n),
            note=f"too few load levels for a fit ({levels}; needs {FIT_MIN_POINTS}): "
            "the measured points are used",
        )
    p0 = [max(float(np.max(x / n)), 1e-9), 0.01, 1e-4]
    try:
        params, _ = curve_fit(
            usl_throughput, n, x, p0=p0, bounds=([0.0, 0.0, 0.0], [np.inf, 1.0, np.inf]),
            maxfev=20_000,
        )  # fmt: skip
    except (RuntimeError, ValueError) as exc:
        return UslFit(points=len(n), note=f"the fit did not converge ({exc})")
    lambda_ops, sigma, kappa = (float(p) for p in params)
    residual = float(np.sum((x - usl_throughput(n, lambda_ops, sigma, kappa)) ** 2))
    total = float(np.sum((x - x.mean()) ** 2))
    r2 = 1.0 - residual / total if total > 0 else 0.0
    peak_n = math.sqrt((1.0 - sigma) / kappa) if kappa > 0 and sigma < 1 else None
    beyond = ""
    if peak_n is not None and peak_n < 1.0:
        # The curve falls from one worker on (sigma near 1): a "peak" below N = 1 is no load.
        beyond = f"no peak at N >= 1: throughput falls from one worker (N* {peak_n:.3g})"
        peak_n = None
    elif peak_n is not None and peak_n > PEAK_EXTRAPOLATION_MAX * float(n.max()):
        # The data show no slowdown; a peak far outside them is an extrapolation of noise.
        beyond = (
            f"no peak within {PEAK_EXTRAPOLATION_MAX:g}x the measured range (the fit would put "
            f"N* at {peak_n:.3g}, an extrapolation)"
        )
        peak_n = None
    good = r2 >= FIT_R2_MIN
    return UslFit(
        points=len(n),
        lambda_ops=lambda_ops,
        sigma=sigma,
        kappa=kappa,
        peak_concurrency=peak_n,
        peak_throughput_ops=(
            float(usl_throughput(peak_n, lambda_ops, sigma, kappa)) if peak_n else None
        ),
        r_squared=r2,
        good=good,
        note="; ".join(
            x
            for x in (
                ""
                if good
                else f"poor fit (R^2 {r2:.2f} < {FIT_R2_MIN}): the measured points are used",
                beyond,
            )
            if x
        ),
    )
