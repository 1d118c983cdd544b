"""Probabilistic customer value: the BG/NBD, MBG/NBD and Pareto/NBD purchase models, the
Gamma-Gamma spend model, P(alive), expected purchases and spend, customer lifetime value, and a
simulator.

Needs scipy (the ``clv`` extra); ``import lifecycle`` does not import this package, and importing
it without scipy raises :class:`~lifecycle.errors.MissingExtra`.
"""

import lifecycle.clv._extra  # noqa: F401  # first: without scipy, a MissingExtra naming the extra
from lifecycle.clv._optimize import Convergence
from lifecycle.clv.betageo import BetaGeo, BetaGeoModel, ModifiedBetaGeo
from lifecycle.clv.gammagamma import GammaGamma, GammaGammaModel
from lifecycle.clv.intervals import CustomerIntervals, Interval, value_intervals
from lifecycle.clv.model import (
    DEFAULT_PENALTY,
    VARIANTS,
    Candidate,
    PurchaseVariant,
    SpendCheck,
    ValueModel,
    boundary_reason,
    fit_candidate,
    fit_spend_model,
)
from lifecycle.clv.pareto import ParetoNBD, ParetoNBDModel
from lifecycle.clv.predictions import CustomerPredictions, predict_customers
from lifecycle.clv.simulate import SimulatedCustomers, simulate_customers
from lifecycle.clv.validation import (
    CalibrationHoldout,
    FrequencyBucket,
    HoldoutCheck,
    ModelComparison,
    TrackingCurve,
    calibration_holdout,
)
from lifecycle.clv.value import PurchaseModel, customer_lifetime_value

__all__ = [
    "DEFAULT_PENALTY",
    "VARIANTS",
    "BetaGeo",
    "BetaGeoModel",
    "CalibrationHoldout",
    "Candidate",
    "Convergence",
    "CustomerIntervals",
    "CustomerPredictions",
    "FrequencyBucket",
    "GammaGamma",
    "GammaGammaModel",
    "HoldoutCheck",
    "Interval",
    "ModelComparison",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "ParetoNBDModel",
    "PurchaseModel",
    "PurchaseVariant",
    "SimulatedCustomers",
    "SpendCheck",
    "TrackingCurve",
    "ValueModel",
    "boundary_reason",
    "calibration_holdout",
    "customer_lifetime_value",
    "fit_candidate",
    "fit_spend_model",
    "predict_customers",
    "simulate_customers",
    "value_intervals",
]
