"""Logistic regression of a share in [0, 1] on covariates, with Firth's penalty, by Newton steps.

    X = [[1, x1], [1, x2], ...]     a column of ones first: the intercept
    y = [1, 0, 0.5, ...]            an outcome per row in [0, 1] (a tie may count 0.5)
    fit = logistic_fit(X, y)        -> LogisticFit(coef=[b0, b1], se=[...], converged=True, ...)
    likelihood_ratio_p(X, y, 1)     -> p of H0: b1 = 0
    logistic_coefs(X, y, weights)   -> [R, k]: the fit under R row weightings (bootstrap resamples)

The estimate maximizes the log-likelihood plus half the log-determinant of the Fisher information
(Firth 1993). Unlike plain maximum likelihood it stays finite when a covariate separates the
outcomes completely (a judge that always prefers the longer answer), and it barely moves a fit
that has no such problem. `se` is the square root of the inverse information's diagonal (the
Hessian at the estimate); its Wald test is unreliable near separation (the Hauck-Donner effect:
the farther the estimate, the larger its se), so `likelihood_ratio_p` tests a coefficient by the
penalized likelihood ratio instead (Heinze & Schemper 2002): the model refitted with that
coefficient held at 0, twice the drop in penalized log-likelihood against chi-square with 1 df.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import chi2

MAX_STEP = 5.0    # a Newton step changes a coefficient by at most 5 x max(1, largest |coefficient|): sane near
                  # separation, yet a coefficient that must grow large (a steep length effect) gets there
TOLERANCE = 1e-7  # converged: no coefficient moves by more than this x max(1, its size) in a step
ITERATIONS = 1000  # near separation the steps shrink slowly (by about a fifth per step)
HALVINGS = 40
GAIN_TOLERANCE = 1e-10  # converged, too: a step that raises the penalized log-likelihood by less than this


@dataclass(frozen=True)
class LogisticFit:
    coef: list[float]
    se: list[float]            # sqrt(diag(information^-1)) at the estimate
    penalized_loglik: float
    converged: bool
    iterations: int


def logistic_fit(X, y) -> LogisticFit:
    """The Firth-penalized fit of y on X (see the module docstring)."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    coef, info, iterations, converged = _newton(X, y, np.ones((1, len(y))), np.zeros(X.shape[1], dtype=bool))
    se = np.sqrt(np.diagonal(np.linalg.inv(info[0])))
    return LogisticFit([float(c) for c in coef[0]], [float(s) for s in se],
                       float(_penalized_loglik(X, y, coef[0])), bool(converged[0]), iterations)


def likelihood_ratio_p(X, y, column: int) -> float:
    """Two-sided p of H0: coefficient `column` = 0, by the penalized likelihood ratio."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    held = np.zeros(X.shape[1], dtype=bool)
    held[column] = True
    full = _newton(X, y, np.ones((1, len(y))), np.zeros_like(held))[0][0]
    null = _newton(X, y, np.ones((1, len(y))), held)[0][0]
    statistic = 2 * (_penalized_loglik(X, y, full) - _penalized_loglik(X, y, null))
    return float(chi2.sf(max(statistic, 0.0), df=1))


def logistic_coefs(X, y, weights) -> np.ndarray:
    """[R, k] coefficients, one fit per row of `weights` ([R, n]: how often each of the n rows
    counts; a bootstrap resample's counts). NaN where the coefficients are not identifiable (the
    weighted rows of X are rank-deficient: a resample whose prompts all share one x) or the fit
    did not converge."""
    X, y, weights = np.asarray(X, dtype=float), np.asarray(y, dtype=float), np.asarray(weights, dtype=float)
    coef = np.full((weights.shape[0], X.shape[1]), np.nan)
    gram = np.einsum("rn,ni,nj->rij", weights, X, X)
    ok = np.linalg.matrix_rank(gram) == X.shape[1]
    if ok.any():
        fitted, _, _, converged = _newton(X, y, weights[ok], np.zeros(X.shape[1], dtype=bool))
        fitted[~converged] = np.nan
        coef[ok] = fitted
    return coef


def _newton(X: np.ndarray, y: np.ndarray, weights: np.ndarray, held: np.ndarray):
    """Newton steps on the penalized likelihood for R weightings at once; coefficients `held` stay
    0. The Firth-modified score X'(w (y - p) + h (1/2 - p)) (h: the hat matrix's diagonal) is the
    penalized likelihood's gradient, and information^-1 x score an ascent direction: a step that
    does not raise the penalized likelihood is halved until it does (at most HALVINGS times, then
    not taken). A fit has converged when its step or its gain is negligible. Returns (coef [R, k],
    information [R, k, k], iterations, converged [R])."""
    free = ~held
    coef = np.zeros((weights.shape[0], X.shape[1]))
    current, info = _objective(X, y, weights, coef)
    converged = np.zeros(weights.shape[0], dtype=bool)
    active = np.arange(weights.shape[0])
    for iteration in range(1, ITERATIONS + 1):
        w, b, inf = weights[active], coef[active], info[active]
        p = expit(b @ X.T)                                                  # [A, n]
        hat = w * p * (1 - p) * np.einsum("ni,rij,nj->rn", X, np.linalg.inv(inf), X)
        score = (w * (y - p) + hat * (0.5 - p)) @ X                         # [A, k]
        step = np.zeros_like(b)
        step[:, free] = np.linalg.solve(inf[:, free][:, :, free], score[:, free][..., None])[..., 0]
        cap = MAX_STEP * np.maximum(1.0, np.abs(b).max(axis=1))
        step *= np.minimum(1.0, cap / np.maximum(np.abs(step).max(axis=1), 1e-300))[:, None]
        value, new_info = _objective(X, y, w, b + step)
        for _ in range(HALVINGS):
            worse = np.flatnonzero(~(value >= current[active]))             # NaN (a singular point) is worse
            if not len(worse):
                break
            step[worse] /= 2
            value[worse], new_info[worse] = _objective(X, y, w[worse], b[worse] + step[worse])
        kept = value >= current[active]
        step[~kept] = 0.0
        gain = np.where(kept, value - current[active], 0.0)
        coef[active] = b + step
        current[active] = np.where(kept, value, current[active])
        info[active] = np.where(kept[:, None, None], new_info, inf)
        done = (np.abs(step).max(axis=1) < TOLERANCE * np.maximum(1.0, np.abs(coef[active]).max(axis=1))) \
            | (gain < GAIN_TOLERANCE)
        converged[active[done]] = True
        active = active[~done]
        if not len(active):
            break
    return coef, info, iteration, converged


def _objective(X: np.ndarray, y: np.ndarray, weights: np.ndarray, coef: np.ndarray):
    """(penalized log-likelihood [R], information [R, k, k]) at coef [R, k]; -inf where the
    information is singular."""
    eta = coef @ X.T
    loglik = np.sum(weights * (y * -np.logaddexp(0, -eta) + (1 - y) * -np.logaddexp(0, eta)), axis=1)
    p = expit(eta)
    info = np.einsum("rn,ni,nj->rij", weights * p * (1 - p), X, X)
    sign, logdet = np.linalg.slogdet(info)
    return np.where(sign > 0, loglik + 0.5 * logdet, -np.inf), info


def _penalized_loglik(X: np.ndarray, y: np.ndarray, coef) -> float:
    return float(_objective(X, y, np.ones((1, len(y))), np.asarray(coef, dtype=float)[None, :])[0][0])
