"""Probabilistic customer value: the BG/NBD and MBG/NBD purchase models, the Gamma-Gamma spend
model, P(alive), expected purchases and spend, customer lifetime value, and a simulator.

Needs scipy (the ``clv`` extra); ``import lifecycle`` does not import this package, and importing
it without scipy raises :class:`~lifecycle.errors.MissingExtra`.
"""

import lifecycle.clv._extra  # noqa: F401  # first: without scipy, a MissingExtra naming the extra
from lifecycle.clv._optimize import Convergence
from lifecycle.clv.betageo import BetaGeo, BetaGeoModel, ModifiedBetaGeo
from lifecycle.clv.gammagamma import GammaGamma, GammaGammaModel
from lifecycle.clv.model import ValueModel
from lifecycle.clv.simulate import SimulatedCustomers, simulate_customers
from lifecycle.clv.value import customer_lifetime_value

__all__ = [
    "BetaGeo",
    "BetaGeoModel",
    "Convergence",
    "GammaGamma",
    "GammaGammaModel",
    "ModifiedBetaGeo",
    "SimulatedCustomers",
    "ValueModel",
    "customer_lifetime_value",
    "simulate_customers",
]
