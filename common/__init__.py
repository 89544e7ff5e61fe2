"""Shared helper library of the FuseML step images: the step contract, codesets,
environment specs, artifact storage, registries, logging and errors."""
