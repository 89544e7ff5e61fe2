"""What KServe's own model servers install and read, so ``auto`` knows whether they load a model as it was saved.

A pickle (scikit-learn's, joblib's) loads correctly only under the library
version that wrote it, and a booster file only where the server looks for it.
The step image does not carry KServe's sources, so the facts live here.

Source: github.com/kserve/kserve, ``python/<server>/uv.lock`` (the exact
versions the server images install) and ``python/<server>/model.py`` (the file
extensions they load), tag ``v0.20.0``, commit
``1fb781055dd1567164358233e1125142ca6ef1fe``; unchanged on master at
``aaac4e294dae2c7b1aa1886447793f3aa1c30912`` (2026-08-21), whose
``python/VERSION`` still reads 0.20.0. The ClusterServingRuntimes in
``tests/data/kserve/runtimes/`` are from the same tag. Moving to a newer KServe
means reading the same files at its tag and updating this table.

| server | uv.lock blob at v0.20.0 | pin in pyproject.toml |
| --- | --- | --- |
| sklearnserver | ``af00f3585b73fe489a39b88b0b42ee931b9568cf`` | ``scikit-learn~=1.5.1`` |
| xgbserver | ``63322b65babcab3974560e0181c18757f9525b02`` | ``xgboost~=2.1.1`` |
| lgbserver | ``d85ba2bafb50da0caeaf9872e0a97c1282158c23`` | ``lightgbm[scikit-learn]~=4.6.0`` |
"""

from __future__ import annotations

from dataclasses import dataclass

KSERVE_SOURCE = "KServe v0.20.0, commit 1fb78105"


@dataclass(frozen=True)
class ServerLibrary:
    """The library one KServe server predicts with, the version its image installs, and the files it loads."""

    runtime: str
    distribution: str  # the PyPI name, as a model's requirements.txt spells it
    version: str
    extensions: tuple[str, ...]  # it loads the one top-level file with one of these endings


SKLEARN_SERVER = ServerLibrary("kserve-sklearnserver", "scikit-learn", "1.5.2", (".joblib", ".pkl", ".pickle"))
XGBOOST_SERVER = ServerLibrary("kserve-xgbserver", "xgboost", "2.1.4", (".bst", ".json", ".ubj"))
LIGHTGBM_SERVER = ServerLibrary("kserve-lgbserver", "lightgbm", "4.6.0", (".bst",))
