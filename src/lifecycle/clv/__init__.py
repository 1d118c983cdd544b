"""Probabilistic customer value: the BG/NBD, MBG/NBD and Pareto/NBD purchase models, the
Gamma-Gamma spend model, P(alive), expected purchases and spend, customer lifetime value, and a
simulator.

Needs scipy (the ``clv`` extra); ``import lifecycle`` does not import this package.
"""

from lifecycle.clv._optimize import Convergence
from lifecycle.clv.betageo import BetaGeo, BetaGeoModel, ModifiedBetaGeo
from lifecycle.clv.gammagamma import GammaGamma, GammaGammaModel
from lifecycle.clv.intervals import CustomerIntervals, Interval, value_intervals
from lifecycle.clv.model import (
    DEFAULT_PENALTY,
    Candidate,
    SpendCheck,
    ValueModel,
    boundary_reason,
)
from lifecycle.clv.pareto import ParetoNBD, ParetoNBDModel
from lifecycle.clv.simulate import SimulatedCustomers, simulate_customers
from lifecycle.clv.value import PurchaseModel, customer_lifetime_value

__all__ = [
    "DEFAULT_PENALTY",
    "BetaGeo",
    "BetaGeoModel",
    "Candidate",
    "Convergence",
    "CustomerIntervals",
    "GammaGamma",
    "GammaGammaModel",
    "Interval",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "ParetoNBDModel",
    "PurchaseModel",
    "SimulatedCustomers",
    "SpendCheck",
    "ValueModel",
    "boundary_reason",
    "customer_lifetime_value",
    "simulate_customers",
    "value_intervals",
]
