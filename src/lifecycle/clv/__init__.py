"""Probabilistic customer value: the BG/NBD, MBG/NBD and Pareto/NBD purchase models, the
Gamma-Gamma spend model, P(alive), expected purchases and spend, customer lifetime value, and a
simulator.

Needs scipy (the ``clv`` extra); ``import lifecycle`` does not import this package.
"""

from lifecycle.clv._optimize import Convergence
from lifecycle.clv.betageo import BetaGeo, BetaGeoModel, ModifiedBetaGeo
from lifecycle.clv.gammagamma import GammaGamma, GammaGammaModel
from lifecycle.clv.model import ValueModel
from lifecycle.clv.pareto import ParetoNBD, ParetoNBDModel
from lifecycle.clv.simulate import SimulatedCustomers, simulate_customers
from lifecycle.clv.value import PurchaseModel, customer_lifetime_value

__all__ = [
    "BetaGeo",
    "BetaGeoModel",
    "Convergence",
    "GammaGamma",
    "GammaGammaModel",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "ParetoNBDModel",
    "PurchaseModel",
    "SimulatedCustomers",
    "ValueModel",
    "customer_lifetime_value",
    "simulate_customers",
]
