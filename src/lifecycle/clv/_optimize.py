"""Maximum likelihood on log-parameters: L-BFGS-B with analytic gradients, Newton polish, and
standard errors from the Hessian; optionally with weak normal priors on the log-parameters (a
penalised fit, for data whose likelihood has its maximum on the boundary)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import attrs
import numpy as np
from scipy.optimize import minimize

from lifecycle._display import field_table, one_line
from lifecycle.clv._blas import one_thread
from lifecycle.clv._data import Floats
from lifecycle.errors import ConvergenceError, DataError

__all__ = [
    "Convergence",
    "MLEResult",
    "Matrix",
    "Prior",
    "check_penalty",
    "fit_from_json",
    "fit_to_json",
    "frozen_matrix",
    "maximise",
]

_M = TypeVar("_M")

#: the objective: mean negative log-likelihood and its gradient, both in log-parameters
Objective = Callable[[Floats], tuple[float, Floats]]
"""The mean negative log-likelihood and its gradient; an objective with a ``hessian(theta)``
method gives its exact Hessian, used instead of differences of the gradient."""

_BOUND = 30.0  # log-parameters beyond +-30 mean the data drive a parameter to 0 or infinity
_GTOL = 1e-6  # gradient of the mean log-likelihood accepted as a maximum


@attrs.frozen(kw_only=True)
class Convergence:
    """How the fit ended: ``converged``, ``iterations`` (optimiser steps),
    ``gradient_norm`` (largest gradient component of the mean log-likelihood, in log-parameters)
    and a ``message``."""

    converged: bool
    iterations: int
    gradient_norm: float
    message: str

    def __repr__(self) -> str:
        state = "converged" if self.converged else "NOT converged"
        return one_line(
            "Convergence",
            state,
            f"{self.iterations} iterations",
            f"gradient {self.gradient_norm:.1e}",
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("converged", self.converged),
            ("iterations", self.iterations),
            ("largest gradient", f"{self.gradient_norm:.2e}"),
            ("message", self.message),
        ]
        return field_table(rows, caption="Convergence of the fit")


@attrs.frozen(kw_only=True)
class MLEResult:
    params: Floats
    standard_errors: Floats
    #: covariance of the log-parameters (inverse Hessian of the total, penalised when a prior
    #: was given): what the intervals of the predictions propagate
    log_covariance: Floats
    log_likelihood: float
    convergence: Convergence


Matrix = tuple[tuple[float, ...], ...]


def frozen_matrix(value: Any) -> Matrix | None:
    """A square matrix as a tuple of tuples of floats (hashable, immutable), or None."""
    if value is None:
        return None
    return tuple(tuple(float(v) for v in row) for row in np.asarray(value, dtype=np.float64))


def check_penalty(penalty: float) -> float:
    """A validated penalty: a finite number >= 0."""
    value = float(penalty)
    if not (math.isfinite(value) and value >= 0):
        raise DataError(f"must be a finite number >= 0, got {penalty!r}", column="penalty")
    return value


@attrs.frozen(kw_only=True)
class Prior:
    """Independent normal priors on the log-parameters: ``centre`` (log-parameters) and the
    ``penalty`` 1/sd^2, so the log-prior is -penalty/2 * sum((theta - centre)^2)."""

    centre: Floats
    penalty: float

    def wrap(self, objective: Objective, total_weight: float) -> Objective:
        """The mean negative log-posterior (per unit of weight) and its gradient."""
        scale = self.penalty / total_weight

        def penalised(theta: Floats) -> tuple[float, Floats]:
            f, g = objective(theta)
            d = theta - self.centre
            return f + 0.5 * scale * float(d @ d), g + scale * d

        return penalised


def _hessian(objective: Objective, theta: Floats) -> Floats:
    """Central differences of the analytic gradient; symmetric."""
    k = theta.size
    h = np.empty((k, k))
    step = 1e-5
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        h[i] = (objective(theta + e)[1] - objective(theta - e)[1]) / (2 * step)
    return (h + h.T) / 2


def maximise(
    model: str,
    objective: Objective,
    start: Floats,
    total_weight: float,
    names: tuple[str, ...],
    prior: Prior | None = None,
    leash: float | None = None,
) -> MLEResult:
    """Maximise the likelihood (times ``prior``, when given) from ``start`` (log-parameters)
    and check that it is a maximum. With ``leash``, a search that takes a log-parameter
    further than that from its start is stopped there as heading for the boundary (for
    likelihoods that grow costly out there).

    Raises:
        ConvergenceError: the optimiser failed, ran a parameter to 0 or infinity, or stopped on
            a point that is not a maximum.
        DataError: the likelihood is flat in some direction (the data cannot identify it).
    """
    with one_thread():
        return _maximise(model, objective, start, total_weight, names, prior, leash)


def _maximise(
    model: str,
    objective: Objective,
    start: Floats,
    total_weight: float,
    names: tuple[str, ...],
    prior: Prior | None,
    leash: float | None,
) -> MLEResult:
    likelihood = objective
    exact: Callable[[Floats], Floats] | None = getattr(objective, "hessian", None)
    if prior is not None and prior.penalty > 0:
        objective = prior.wrap(objective, total_weight)
        if exact is not None:
            of_likelihood, scale = exact, prior.penalty / total_weight

            def exact_penalised(theta: Floats) -> Floats:
                return of_likelihood(theta) + scale * np.eye(theta.size)

            exact = exact_penalised

    def hessian_at(theta: Floats) -> Floats:
        """The objective's own exact Hessian when it has one, else central differences."""
        return _hessian(objective, theta) if exact is None else exact(theta)

    newton = None
    joint = getattr(likelihood, "with_hessian", None)
    if joint is not None and (prior is None or prior.penalty <= 0):
        newton = _newton(joint, start, leash)
    if newton is not None:
        theta, f, g, hess, iterations = newton
        message = "Newton's method with the exact Hessian"
    else:
        theta, f, g, hess, iterations, message = _quasi_newton(
            model, objective, start, names, leash, hessian_at
        )
    gnorm = float(np.abs(g).max()) if np.isfinite(g).all() else float("inf")
    if not np.isfinite(f) or not np.isfinite(gnorm):
        raise ConvergenceError(model, "the likelihood is not finite at the optimiser's stop")
    at_bound = np.abs(theta) >= _BOUND - 1e-6
    if at_bound.any():
        bad = ", ".join(n for n, b in zip(names, at_bound, strict=True) if b)
        raise DataError(
            f"the data drive {bad} to 0 or infinity, so they cannot identify the {model} model"
        )
    if gnorm > _GTOL:
        raise ConvergenceError(model, f"gradient {gnorm:.2g} after {iterations} iterations")
    if not np.isfinite(hess).all():
        hess = hessian_at(theta)
    eig = np.linalg.eigvalsh(hess)
    if not np.isfinite(eig).all() or eig.min() <= 1e-12 * max(1.0, float(eig.max())):
        raise DataError(
            f"the likelihood is flat at its maximum: the data cannot identify the {model} model"
        )
    params = np.exp(theta)
    # in log-parameters at a maximum, H_theta = D H_param D with D = diag(params)
    cov_theta = np.linalg.inv(hess * total_weight)
    se = params * np.sqrt(np.clip(np.diag(cov_theta), 0.0, None))
    return MLEResult(
        params=params,
        standard_errors=se,
        log_covariance=(cov_theta + cov_theta.T) / 2,
        log_likelihood=float(-likelihood(theta)[0] * total_weight),
        convergence=Convergence(
            converged=True,
            iterations=iterations,
            gradient_norm=gnorm,
            message=message,
        ),
    )


def _newton(
    joint: Callable[[Floats], tuple[float, Floats, Floats]], start: Floats, leash: float | None
) -> tuple[Floats, float, Floats, Floats, int] | None:
    """Newton's method from ``start`` with the exact Hessian (``joint`` gives value, gradient
    and Hessian in one pass over the data) and step halving; None when it meets a Hessian that
    is not positive definite, strays past ``leash`` or the bounds, or stalls: then the
    quasi-Newton search runs instead."""
    with np.errstate(all="ignore"):
        theta = np.array(start, dtype=np.float64)
        f, g, hess = joint(theta)
        for iteration in range(1, 60):
            if not (np.isfinite(f) and np.isfinite(g).all() and np.isfinite(hess).all()):
                return None
            if np.abs(g).max() < 1e-10:
                return theta, f, g, hess, iteration - 1
            try:
                np.linalg.cholesky(hess)
                step = np.linalg.solve(hess, g)
            except np.linalg.LinAlgError:
                return None
            size = 1.0
            while size > 1e-6:
                cand = theta - size * step
                if np.abs(cand).max() >= _BOUND or (
                    leash is not None and np.abs(cand - start).max() > leash
                ):
                    return None
                fc, gc, hc = joint(cand)
                if np.isfinite(fc) and (
                    fc <= f + 1e-15 * abs(f)
                    or (
                        fc <= f + 1e-13 * abs(f)
                        and np.isfinite(gc).all()
                        and np.abs(gc).max() < 0.5 * np.abs(g).max()
                    )
                ):
                    break
                size /= 2
            else:
                return None
            theta, f, g, hess = cand, fc, gc, hc
    return None


def _quasi_newton(
    model: str,
    objective: Objective,
    start: Floats,
    names: tuple[str, ...],
    leash: float | None,
    hessian_at: Callable[[Floats], Floats],
) -> tuple[Floats, float, Floats, Floats, int, str]:
    """L-BFGS-B from ``start``, then Newton steps to polish."""
    strayed: list[Floats] = []

    def watch(xk: Floats) -> None:
        if leash is not None and np.abs(xk - start).max() > leash:
            strayed.append(np.array(xk, dtype=np.float64))
            raise StopIteration

    with np.errstate(all="ignore"):
        res = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_BOUND, _BOUND)] * start.size,
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9, "maxcor": 20},
            callback=watch if leash is not None else None,
        )
    if strayed:
        far = np.abs(strayed[0] - start) > leash
        bad = ", ".join(n for n, b in zip(names, far, strict=True) if b)
        raise DataError(
            f"the data drive {bad} to 0 or infinity, so they cannot identify the {model} model"
        )
    theta = np.asarray(res.x, dtype=np.float64)
    iterations = int(res.nit)
    f, g = objective(theta)
    hess = np.full((start.size, start.size), np.nan)
    for _ in range(8):  # Newton polish: L-BFGS-B stops short of the maximum by ~1e-7
        if not (np.isfinite(f) and np.isfinite(g).all()):
            break
        hess = hessian_at(theta)
        if not np.isfinite(hess).all():
            break
        if np.abs(g).max() < 1e-12:
            break
        try:
            step = np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            break
        if not np.isfinite(step).all() or np.all(np.linalg.eigvalsh(hess) <= 0):
            break
        size = 1.0
        while size > 1e-4:
            cand = theta - size * step
            fc, gc = objective(cand)
            if np.isfinite(fc) and fc <= f + 1e-15 * abs(f):
                break
            # next to the maximum f moves by g^2/h, below its rounding: a step that halves
            # the gradient without raising f past rounding is the better point
            if (
                np.isfinite(fc)
                and fc <= f + 1e-13 * abs(f)
                and np.isfinite(gc).all()
                and np.abs(gc).max() < 0.5 * np.abs(g).max()
            ):
                break
            size /= 2
        else:
            break
        theta, f, g = cand, fc, gc
        iterations += 1
        if np.abs(g).max() < 1e-10:
            break  # the Hessian from one step back, 1e-7 away, serves the standard errors
    return theta, f, g, hess, iterations, str(res.message)


def fit_to_json(model: str, fitted: Any, **extra: Any) -> str:
    """A fitted model's common record (``params``, standard errors, log-likelihood, customers,
    convergence) and ``extra`` as JSON, tagged with the model's name and the format."""
    conv = fitted.convergence
    ses = fitted.standard_errors
    return json.dumps(
        {
            "model": model,
            "format": 1,
            "params": dict(fitted.params),
            "standard_errors": None if ses is None else dict(ses),
            "log_likelihood": fitted.log_likelihood,
            "n_customers": fitted.n_customers,
            "convergence": None if conv is None else attrs.asdict(conv),
            "log_covariance": None
            if fitted.log_covariance is None
            else [list(row) for row in fitted.log_covariance],
            "penalty": fitted.penalty,
            **extra,
        },
        sort_keys=True,
    )


def fit_from_json(
    text: str, models: Collection[str], build: Callable[[dict[str, Any], dict[str, Any]], _M]
) -> _M:
    """Read what :func:`fit_to_json` wrote for one of ``models``: ``build(data, common)`` makes
    the model from the whole record and the common keyword arguments.

    Raises:
        DataError: not such a saved model, or a record that does not read.
    """
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("model") not in models or data.get("format") != 1:
            raise DataError(f"is not a saved {' or '.join(sorted(models))} model", column="json")
        conv = data.get("convergence")
        common = {
            "params": data["params"],
            "standard_errors": data.get("standard_errors"),
            "log_likelihood": data.get("log_likelihood"),
            "n_customers": data.get("n_customers"),
            "convergence": None if conv is None else Convergence(**conv),
            "log_covariance": data.get("log_covariance"),
            "penalty": float(data.get("penalty", 0.0)),
        }
        return build(data, common)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"cannot be read as a model: {e}", column="json") from e
