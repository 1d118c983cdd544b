"""The test kit for hosts and for ``lifecycle``'s own tests.

:mod:`lifecycle.testing.strategies` holds hypothesis strategies for aware datetimes, profiles,
events and coherent customer histories; conformance suites for ``Store`` and ``Channel``
implementations live here too. Nothing here is imported by ``import lifecycle``: the kit needs
hypothesis (and pytest), which the library itself does not.
"""
