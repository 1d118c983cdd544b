"""Data to try the library on: a seeded synthetic shop.

``synthetic_shop()`` draws a realistic shop (every stage and status represented) for tests,
benchmarks, docs and first steps.
"""

from lifecycle.datasets.synthetic import SyntheticShop, synthetic_shop

__all__ = ["SyntheticShop", "synthetic_shop"]
