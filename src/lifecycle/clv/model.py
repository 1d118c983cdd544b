"""The value model a shop fits on its own customers: P(alive), expected purchases and CLV.

:class:`ValueModel` pairs a purchase model in days (BG/NBD, MBG/NBD or Pareto/NBD, whichever
fits the shop best) with a Gamma-Gamma spend model. It is what
:meth:`lifecycle.Lifecycle.fit_value_model` fits and what the status rule and
:func:`lifecycle.assess` read: it satisfies :class:`lifecycle.AliveModel` and
:class:`lifecycle.ValueEstimator`. It fits on every shop with repeat buyers: a model whose
likelihood has its maximum on the boundary of the parameter space (no measurable drop-out, or
every customer alike) is refitted with weak priors, and says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from lifecycle._display import html_table, one_line
from lifecycle.analytics.summary import CustomerSummary, rfm_summary
from lifecycle.analytics.table import Transactions
from lifecycle.clv._data import Floats
from lifecycle.clv.betageo import BetaGeo, BetaGeoModel, ModifiedBetaGeo
from lifecycle.clv.gammagamma import GammaGamma, GammaGammaModel
from lifecycle.clv.intervals import CustomerIntervals, value_intervals
from lifecycle.clv.pareto import ParetoNBD, ParetoNBDModel
from lifecycle.clv.value import PurchaseModel, customer_lifetime_value
from lifecycle.errors import DataError, ModelError
from lifecycle.events import Event
from lifecycle.policy import Policy

__all__ = [
    "DEFAULT_PENALTY",
    "VARIANTS",
    "Candidate",
    "PurchaseVariant",
    "SpendCheck",
    "ValueModel",
    "boundary_reason",
    "fit_candidate",
    "fit_spend_model",
]

#: The weight of the weak priors a boundary fit falls back to: normal priors with sd
#: 1/sqrt(0.1) = 3.2 on each log-parameter, so a parameter moves freely within a factor of
#: about 25 either side of its centre and is held only where the data say nothing.
DEFAULT_PENALTY = 0.1

#: Purchase models a shop's value model chooses from.
PurchaseVariant = Literal["BG/NBD", "MBG/NBD", "Pareto/NBD"]
#: All of them, the default choice.
VARIANTS: tuple[PurchaseVariant, ...] = ("BG/NBD", "MBG/NBD", "Pareto/NBD")

#: Shape parameters beyond these bounds mean the maximum lies on the boundary.
_SHAPE_BOUNDS = (1e-4, 1e4)
#: |correlation| of frequency and spend above which the spend model's independence is doubtful
_CORRELATION_WARNING = 0.3


@attrs.frozen(kw_only=True)
class Candidate:
    """One purchase model tried on the shop's data.

    Attributes:
        model: ``"BG/NBD"``, ``"MBG/NBD"`` or ``"Pareto/NBD"``.
        log_likelihood: at the fitted parameters; ``None`` when no fit was possible.
        boundary: the maximum-likelihood fit lay on the boundary (or did not converge there).
        penalised: the parameters come from the fit with weak priors.
        chosen: the value model uses this one.
        reason: what happened, in a sentence.
    """

    model: str
    log_likelihood: float | None
    boundary: bool
    penalised: bool
    chosen: bool
    reason: str


@attrs.frozen(kw_only=True)
class SpendCheck:
    """How the spend model was fitted, and whether its assumption holds.

    Attributes:
        repeat_buyers: customers with repeat purchases.
        fitted_on: those the Gamma-Gamma model was fitted on.
        zero_value: repeat buyers whose repeat purchases are worth nothing (or less: refunds);
            left out of the fit, and valued at 0 per future purchase.
        correlation: Pearson correlation of frequency and mean spend among the fitted buyers;
            Gamma-Gamma assumes they are independent (``None`` with fewer than 3 buyers).
        independent: ``abs(correlation) <= 0.3``, the usual rule of thumb.
    """

    repeat_buyers: int
    fitted_on: int
    zero_value: int
    correlation: float | None
    independent: bool

    def describe(self) -> str:
        """One sentence on the spend data, in English."""
        text = f"spend model on {self.fitted_on:,} of {self.repeat_buyers:,} repeat buyers"
        if self.zero_value:
            text += f" ({self.zero_value:,} with zero-value repeat purchases left out)"
        if self.correlation is not None:
            verdict = "independent enough" if self.independent else "NOT independent"
            text += f"; frequency-spend correlation {self.correlation:.2f} ({verdict})"
        return text


@attrs.frozen(kw_only=True)
class ValueModel:
    """A purchase model in days and, when the shop has repeat buyers who spend differently, a
    spend model.

    Attributes:
        purchases: the purchase model, times in days: BG/NBD, MBG/NBD or Pareto/NBD, whichever
            has the highest likelihood on the shop's data (MBG/NBD lets a customer drop out
            right after the first purchase, which shops with many one-time buyers show;
            Pareto/NBD lets them drop out at any time).
        spend: the Gamma-Gamma model; ``None`` when it could not be fitted (too few repeat
            buyers, or all spending alike): CLV is then unavailable.
        horizon_days: the expected-purchases horizon ``assess`` reports (default 90).
        clv_horizon_days: the CLV horizon (default 365).
        annual_discount_rate: the discount rate of the CLV (default 10 %).
        customers: how many customers the model was fitted on.
        candidates: every purchase model tried, with what happened to it.
        spend_check: how the spend model was fitted and whether its assumption holds.
    """

    purchases: PurchaseModel
    spend: GammaGammaModel | None
    horizon_days: float = 90.0
    clv_horizon_days: float = 365.0
    annual_discount_rate: float = 0.1
    customers: int = 0
    candidates: tuple[Candidate, ...] = ()
    spend_check: SpendCheck | None = None

    @classmethod
    def fit_events(
        cls, events: Iterable[Event], policy: Policy, at: datetime, **settings: Any
    ) -> ValueModel:
        """Fit both models on the valid orders among ``events`` up to ``at``, as the policy
        counts them (its currency, its zone); ``settings`` as :meth:`fit`.

        Raises:
            DataError: the orders cannot identify any purchase model (no repeat buyer, or
                fewer than two customers).
        """
        table = Transactions.from_events(list(events), policy=policy, at=at)
        return cls.fit(rfm_summary(table, end=at, unit="days"), **settings)

    @classmethod
    def fit(
        cls,
        summary: CustomerSummary,
        *,
        penalty: float | None = None,
        models: Sequence[PurchaseVariant] = VARIANTS,
        **settings: Any,
    ) -> ValueModel:
        """Fit the purchase models and the spend model on a per-customer summary in days.

        Args:
            summary: the customers, in days.
            penalty: ``None`` (default): maximum likelihood, and a model whose maximum lies on
                the boundary is refitted with weak priors of weight :data:`DEFAULT_PENALTY`;
                ``0``: maximum likelihood only (a model that cannot be fitted so is skipped);
                a number > 0: every model fitted with priors of that weight.
            models: the purchase models to choose from (the highest likelihood wins).
            settings: the horizons and the discount rate.

        Raises:
            DataError: the summary is in weeks, or cannot identify any purchase model.
        """
        if summary.unit != "days":
            raise DataError(
                "fit on a summary in days (rfm_summary(..., unit='days'))", column="unit"
            )
        if not models or any(m not in VARIANTS for m in models):
            raise DataError(f"must be some of {', '.join(VARIANTS)}", column="models")
        purchases, candidates = _best_purchase_model(summary, penalty, tuple(models))
        spend, check = fit_spend_model(summary.frequency, summary.monetary_value, penalty)
        return cls(
            purchases=purchases,
            spend=spend,
            customers=len(summary),
            candidates=candidates,
            spend_check=check,
            **settings,
        )

    @property
    def variant(self) -> str:
        """``"BG/NBD"``, ``"MBG/NBD"`` or ``"Pareto/NBD"``."""
        return str(self.purchases.variant)

    def __repr__(self) -> str:
        spend = "Gamma-Gamma" if self.spend is not None else "no spend model"
        return one_line(
            "ValueModel",
            f"{self.variant} + {spend}",
            f"{self.customers:,} customers",
            f"horizon {self.horizon_days:g} days",
            f"CLV {self.clv_horizon_days:g} days at {self.annual_discount_rate:.0%}",
        )

    @property
    def chosen(self) -> Candidate | None:
        """The candidate the model uses (``None`` for a model built by hand)."""
        return next((c for c in self.candidates if c.chosen), None)

    @property
    def boundary(self) -> bool:
        """Whether the purchase model's maximum-likelihood fit lay on the boundary."""
        chosen = self.chosen
        return chosen is not None and chosen.boundary

    @property
    def reason(self) -> str:
        """Why this purchase model, in a sentence."""
        chosen = self.chosen
        if chosen is None:
            return f"{self.variant} given as it is."
        others = [
            f"{c.model} {c.log_likelihood:,.1f}"
            for c in self.candidates
            if not c.chosen and c.log_likelihood is not None
        ]
        failed = [c.model for c in self.candidates if c.log_likelihood is None]
        text = chosen.reason
        if others:
            text += (
                f" Highest log-likelihood ({chosen.log_likelihood:,.1f}; "
                + ", ".join(others)
                + ")."
            )
        if failed:
            text += " Not fitted: " + ", ".join(failed) + "."
        return text

    def p_alive(self, frequency: float, recency: float, T: float) -> float:
        """The probability the customer is still active (times in days)."""
        return float(self.purchases.p_alive(frequency, recency, T))

    def customer_value(
        self, frequency: float, recency: float, T: float, monetary_value: float
    ) -> tuple[float, float | None]:
        """Expected purchases within ``horizon_days`` and the CLV over ``clv_horizon_days``
        (``None`` without a spend model, or with a spend model that cannot price this
        customer)."""
        expected = float(
            self.purchases.expected_purchases(self.horizon_days, frequency, recency, T)
        )
        try:
            clv = self.clv(
                np.array([frequency]),
                np.array([recency]),
                np.array([T]),
                np.array([monetary_value]),
            )
        except DataError:
            return expected, None
        return expected, None if clv is None else float(clv[0])

    def clv(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
        monetary_value: npt.ArrayLike,
    ) -> Floats | None:
        """Each customer's lifetime value over ``clv_horizon_days``, discounted (times in
        days); ``None`` without a spend model. Customers without repeat purchases are priced
        at the population's mean spend; those whose repeat purchases were worth nothing (or
        less) at nothing.

        Raises:
            DataError: malformed input.
        """
        if self.spend is None:
            return None
        x, m, worthless = _spend_inputs(frequency, monetary_value)
        value = customer_lifetime_value(
            self.purchases,
            self.spend,
            x,
            recency,
            T,
            m,
            horizon_days=self.clv_horizon_days,
            annual_discount_rate=self.annual_discount_rate,
        )
        return np.where(worthless, 0.0, value)

    def intervals(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
        monetary_value: npt.ArrayLike | None = None,
        *,
        level: float = 0.9,
    ) -> CustomerIntervals:
        """Each customer's P(alive), expected purchases within ``horizon_days`` and (with a
        spend model and ``monetary_value``) CLV, with intervals at ``level`` from the fits'
        parameter uncertainty (:func:`lifecycle.clv.value_intervals`). Times in days.

        Raises:
            DataError: malformed input, or a model without a covariance (built by hand).
        """
        spend = None
        m: Floats | None = None
        worthless = None
        if self.spend is not None and monetary_value is not None:
            spend = self.spend
            _, m, worthless = _spend_inputs(frequency, monetary_value)
        out = value_intervals(
            self.purchases,
            frequency,
            recency,
            T,
            horizon=self.horizon_days,
            spend=spend,
            monetary_value=m,
            clv_horizon_days=self.clv_horizon_days,
            annual_discount_rate=self.annual_discount_rate,
            level=level,
        )
        if out.clv is not None and worthless is not None and worthless.any():
            out = attrs.evolve(out, clv=out.clv.zeroed(worthless))
        return out

    def to_json(self) -> str:
        """Both models, the choice and the settings as JSON."""
        return json.dumps(
            {
                "purchases": json.loads(self.purchases.to_json()),
                "spend": None if self.spend is None else json.loads(self.spend.to_json()),
                "horizon_days": self.horizon_days,
                "clv_horizon_days": self.clv_horizon_days,
                "annual_discount_rate": self.annual_discount_rate,
                "customers": self.customers,
                "candidates": [attrs.asdict(c) for c in self.candidates],
                "spend_check": None if self.spend_check is None else attrs.asdict(self.spend_check),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ValueModel:
        """A model saved by :meth:`to_json`.

        Raises:
            DataError: not a saved value model.
        """
        try:
            data = json.loads(text)
            saved = json.dumps(data["purchases"])
            purchases: PurchaseModel = (
                ParetoNBDModel.from_json(saved)
                if data["purchases"].get("model") == "Pareto/NBD"
                else BetaGeoModel.from_json(saved)
            )
            check = data.get("spend_check")
            return cls(
                purchases=purchases,
                spend=None
                if data["spend"] is None
                else GammaGammaModel.from_json(json.dumps(data["spend"])),
                horizon_days=float(data["horizon_days"]),
                clv_horizon_days=float(data["clv_horizon_days"]),
                annual_discount_rate=float(data["annual_discount_rate"]),
                customers=int(data["customers"]),
                candidates=tuple(Candidate(**c) for c in data.get("candidates", ())),
                spend_check=None if check is None else SpendCheck(**check),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            if isinstance(e, DataError):
                raise
            raise DataError(f"cannot be read as a value model: {e}", column="json") from e

    def _repr_html_(self) -> str:
        rows = [
            (
                c.model + (" (chosen)" if c.chosen else ""),
                "-" if c.log_likelihood is None else f"{c.log_likelihood:,.1f}",
                "yes" if c.boundary else "no",
                "yes" if c.penalised else "no",
                c.reason,
            )
            for c in self.candidates
        ]
        params = ", ".join(f"{k} {v:.4g}" for k, v in self.purchases.params.items())
        caption = f"{self.variant} on {self.customers:,} customers ({params})"
        if self.spend_check is not None:
            caption += "; " + self.spend_check.describe()
        head = ("model", "log-likelihood", "boundary", "penalised", "what happened")
        intro = (
            f"<p>Value model on {self.customers:,} customers: expected purchases over "
            f"{self.horizon_days:g} days, CLV over {self.clv_horizon_days:g} days at "
            f"{self.annual_discount_rate:.0%} a year.</p>"
        )
        spend = (
            "<p>No spend model: CLV unavailable.</p>"
            if self.spend is None
            else self.spend._repr_html_()
        )
        return intro + html_table(head, rows, caption=caption) + spend


def _spend_inputs(
    frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> tuple[Floats, Floats, npt.NDArray[np.bool_]]:
    """Frequencies, spends the spend model can price (repeat buyers of no value get a
    placeholder) and which customers' repeat purchases were worth nothing."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    x, m = np.broadcast_arrays(x, m)
    worthless = (x > 0) & (m <= 0)
    return x, np.where(worthless, 1.0, np.where(x > 0, m, 0.0)), worthless


# -- choosing the purchase model --------------------------------------------------------------

_FITTERS: dict[str, Any] = {
    "BG/NBD": BetaGeo,
    "MBG/NBD": ModifiedBetaGeo,
    "Pareto/NBD": ParetoNBD,
}

_SHAPES: dict[str, tuple[str, ...]] = {
    "BG/NBD": ("r", "a", "b"),
    "MBG/NBD": ("r", "a", "b"),
    "Pareto/NBD": ("r", "s"),
}


def boundary_reason(model: PurchaseModel) -> str | None:
    """Why ``model``'s parameters lie on the boundary of the parameter space, in words, or
    ``None`` when they do not.

    Shape parameters beyond 1e4 have run to infinity and below 1e-4 to 0; a mean drop-out
    probability below 1e-3 per purchase (BG/NBD, MBG/NBD) or a mean lifetime beyond 100 years
    (Pareto/NBD) is no measurable drop-out.
    """
    p = model.params
    lo, hi = _SHAPE_BOUNDS
    big = {n for n in _SHAPES[model.variant] if p[n] > hi}
    small = {n for n in _SHAPES[model.variant] if p[n] < lo}
    said: list[str] = []
    if "r" in big:
        said.append("every customer buys at about the same rate (r, alpha -> infinity)")
    if "r" in small:
        said.append("the purchase rates are degenerate (r -> 0)")
    if model.variant == "Pareto/NBD":
        # mean drop-out rate s / beta per unit of time; its inverse, in years
        lifetime_years = p["beta"] / p["s"] * model.time_unit_days / 365.25
        if "s" in big:
            said.append("every customer drops out at about the same rate (s, beta -> infinity)")
        if "s" in small or lifetime_years > 100:
            said.append("no measurable drop-out (s / beta -> 0)")
    else:
        mean = p["a"] / (p["a"] + p["b"])
        if {"a", "b"} <= big:
            said.append(
                "every customer drops out with about the same probability "
                f"({mean:.1%} after each purchase; a, b -> infinity)"
            )
        elif mean < 1e-3 or "b" in big or "a" in small:
            said.append("no measurable drop-out (p -> 0)")
        elif "a" in big or "b" in small:
            said.append("customers drop out at once (p -> 1)")
    return "; ".join(said) if said else None


def fit_candidate(
    variant: str, summary: CustomerSummary, penalty: float | None = None
) -> tuple[PurchaseModel | None, Candidate]:
    """Fit one purchase model on ``summary`` (days) as :meth:`ValueModel.fit` does, with what
    happened: the model (``None`` when it could not be fitted) and its :class:`Candidate`."""
    x, tx, big_t = summary.frequency, summary.recency, summary.T
    fitter = _FITTERS[variant]
    name = variant
    why: str | None
    if penalty is not None and penalty > 0:
        try:
            model = fitter(penalty=penalty).fit(x, tx, big_t)
        except (ModelError, DataError) as e:
            return None, _failed(name, str(e))
        why = boundary_reason(model)
        return model, Candidate(
            model=name,
            log_likelihood=model.log_likelihood,
            boundary=why is not None,
            penalised=True,
            chosen=False,
            reason=f"{name} fitted with weak priors (penalty {penalty:g})"
            + (f"; {why}." if why else "."),
        )
    try:
        model = fitter().fit(x, tx, big_t)
        why = boundary_reason(model)
    except (ModelError, DataError) as e:
        if penalty == 0:
            return None, _failed(name, str(e))
        model, why = None, f"the maximum-likelihood fit failed ({e})"
    if why is None:
        assert model is not None
        return model, Candidate(
            model=name,
            log_likelihood=model.log_likelihood,
            boundary=False,
            penalised=False,
            chosen=False,
            reason=f"{name} fitted by maximum likelihood.",
        )
    if penalty == 0:
        assert model is not None
        return model, Candidate(
            model=name,
            log_likelihood=model.log_likelihood,
            boundary=True,
            penalised=False,
            chosen=False,
            reason=f"{name}'s likelihood has its maximum on the boundary: {why}.",
        )
    try:
        held = fitter(penalty=DEFAULT_PENALTY).fit(x, tx, big_t)
    except (ModelError, DataError) as e:
        return None, _failed(name, f"{why}; with weak priors too: {e}")
    if model is None:
        # the fit with priors shows where the likelihood was heading
        leaning = boundary_reason(held)
        if leaning is not None:
            why = f"{leaning} ({why})"
    return held, Candidate(
        model=name,
        log_likelihood=held.log_likelihood,
        boundary=True,
        penalised=True,
        chosen=False,
        reason=f"{name}'s likelihood has its maximum on the boundary: {why}; "
        f"fitted with weak priors (penalty {DEFAULT_PENALTY:g}) instead.",
    )


def _failed(name: str, why: str) -> Candidate:
    return Candidate(
        model=name,
        log_likelihood=None,
        boundary=False,
        penalised=False,
        chosen=False,
        reason=f"{name} could not be fitted: {why}",
    )


def _best_purchase_model(
    summary: CustomerSummary, penalty: float | None, models: tuple[str, ...]
) -> tuple[PurchaseModel, tuple[Candidate, ...]]:
    """Every model in ``models`` fitted on the same data; the highest likelihood wins.

    Raises:
        DataError: no model could be fitted (the data cannot identify any).
    """
    if len(summary) < 2:
        raise DataError("at least two customers are needed to fit a model", column="frequency")
    if not (summary.frequency > 0).any():
        raise DataError("no customer made a repeat purchase", column="frequency")
    fits = [fit_candidate(v, summary, penalty) for v in models]
    scored = [
        (i, m.log_likelihood)
        for i, (m, _) in enumerate(fits)
        if m is not None and m.log_likelihood is not None and math.isfinite(m.log_likelihood)
    ]
    if not scored:
        raise DataError(
            "no purchase model could be fitted: " + " ".join(c.reason for _, c in fits),
            column="frequency",
        )
    best = max(scored, key=lambda item: item[1])[0]
    model = fits[best][0]
    assert model is not None
    candidates = tuple(attrs.evolve(c, chosen=i == best) for i, (_, c) in enumerate(fits))
    return model, candidates


def fit_spend_model(
    frequency: npt.ArrayLike, monetary_value: npt.ArrayLike, penalty: float | None = None
) -> tuple[GammaGammaModel | None, SpendCheck]:
    """The Gamma-Gamma model as :meth:`ValueModel.fit` fits it (on the repeat buyers whose
    repeat purchases have a value; ``penalty`` as there), and the check of its independence
    assumption; ``None`` for the model when it cannot be fitted."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    repeat = x > 0
    worthless = repeat & (m <= 0)
    usable = repeat & ~worthless
    correlation: float | None = None
    if usable.sum() >= 3 and np.ptp(x[usable]) > 0 and np.ptp(m[usable]) > 0:
        correlation = float(np.corrcoef(x[usable], m[usable])[0, 1])
    check = SpendCheck(
        repeat_buyers=int(repeat.sum()),
        fitted_on=int(usable.sum()),
        zero_value=int(worthless.sum()),
        correlation=correlation,
        independent=correlation is None or abs(correlation) <= _CORRELATION_WARNING,
    )
    xf, mf = x[usable], m[usable]
    try:
        return GammaGamma(penalty=penalty or 0.0).fit(xf, mf), check
    except (ModelError, DataError):
        if penalty is not None:
            return None, check
    # too few buyers or all spending alike fail again; a boundary maximum is held by the priors
    try:
        return GammaGamma(penalty=DEFAULT_PENALTY).fit(xf, mf), check
    except (ModelError, DataError):
        return None, check
