"""Fixtures shared by the unit tests."""

from tests.unit.test_orders_domain import clock, shop  # noqa: F401 (fixtures, by name)
