"""Scaffolding for tests, CI and benchmarks (a Debian base image, a Docker engine); not installed, not product code."""
