"""Shared helper library of the FuseML step images: the step contract, codesets,
environment specs, artifact storage, registries, logging and errors."""

# The fuseml-steps version: stamped into what the steps build (environment tags, run scripts).
__version__ = "0.1.0"
