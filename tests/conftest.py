"""Fixtures live in tests/fixtures/, one module per kind of thing they provide."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.models",
]
