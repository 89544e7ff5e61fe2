"""What a saved MLflow model is: its flavours, signature, input example and files.

The runtime is chosen from these facts (not from the flavour name alone: MLflow
3.17 saves scikit-learn models as ``model.skops`` by default, which KServe's
sklearn server cannot load), and the readiness probe builds its request from the
input example or the signature. Only MLmodel and the small example files are
read (through ``common.mlmodel``, the reader the serving runtime uses too); the
model itself is never downloaded here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from common.errors import InputError, StorageError
from common.mlmodel import MLMODEL, Column, InputExample, MLmodel, ModelError, parse_input_example, parse_mlmodel
from common.storage import ArtifactStore, join_url
from steps.predictor.kserve_servers import SKLEARN_SERVER

log = logging.getLogger(__name__)

# Extensions KServe's sklearn server (and MLServer's sklearn runtime) load.
SKLEARN_SERVER_EXTENSIONS = SKLEARN_SERVER.extensions
REQUIREMENTS_TXT = "requirements.txt"
# Files MLflow writes beside every model's own files: what is left in a folder besides these is the model's.
MLFLOW_FILES = frozenset(
    {MLMODEL, "conda.yaml", "python_env.yaml", REQUIREMENTS_TXT, "input_example.json", "serving_input_example.json",
     "registered_model_meta"}
)  # fmt: skip
_PINNED = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#,]+)")


@dataclass(frozen=True)
class ModelInfo:
    """The facts about one saved MLflow model that deployment depends on."""

    url: str
    flavors: dict[str, dict[str, Any]]
    files: tuple[str, ...]
    inputs: tuple[Column, ...] = ()
    example_columns: tuple[str, ...] | None = None
    example_rows: tuple[tuple[Any, ...], ...] = ()
    mlflow_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    mlmodel_bytes: bytes = field(default=b"", repr=False)  # MLmodel as read: the cache key (model_cache.content_key)
    requirements: tuple[str, ...] = ()  # the lines of the requirements.txt MLflow wrote beside MLmodel

    def has(self, flavor: str) -> bool:
        return flavor in self.flavors

    def flavor(self, flavor: str) -> dict[str, Any]:
        return self.flavors.get(flavor) or {}

    @property
    def top_level_files(self) -> tuple[str, ...]:
        return tuple(f for f in self.files if "/" not in f)

    @property
    def sklearn_server_files(self) -> tuple[str, ...]:
        """Top-level files KServe's sklearn server would try to load (it wants exactly one)."""
        return tuple(f for f in self.top_level_files if f.lower().endswith(SKLEARN_SERVER_EXTENSIONS))

    def top_level_files_ending(self, extensions: tuple[str, ...]) -> tuple[str, ...]:
        """Top-level files a KServe server that loads ``extensions`` would try (it wants exactly one)."""
        return tuple(f for f in self.top_level_files if f.lower().endswith(extensions))

    def pinned_version(self, distribution: str) -> str | None:
        """The ``==`` version of ``distribution`` in the model's requirements.txt, or None."""
        wanted = _canonical(distribution)
        for line in self.requirements:
            match = _PINNED.match(line)
            if match and _canonical(match.group(1)) == wanted:
                return match.group(2)
        return None

    @property
    def tensor_inputs(self) -> bool:
        return bool(self.inputs) and all(c.is_tensor for c in self.inputs)

    def summary(self) -> str:
        parts = [", ".join(sorted(self.flavors)) or "no flavours"]
        if self.has("sklearn"):
            sk = self.flavor("sklearn")
            parts.append(f"sklearn {sk.get('sklearn_version')} as {sk.get('pickled_model')}")
        parts.append(f"{len(self.inputs)} signature inputs" if self.inputs else "no signature")
        parts.append(f"input example of {len(self.example_rows)} rows" if self.example_rows else "no input example")
        return "; ".join(parts)


def inspect_model(url: str, store: ArtifactStore) -> ModelInfo:
    """Read the MLflow model at ``url`` (the folder that holds MLmodel)."""
    url = url.rstrip("/")
    if url.endswith("/" + MLMODEL) or url == MLMODEL:
        raise InputError(f"model={url}: give the model folder, not the MLmodel file inside it")
    files = tuple(store.list(url))
    if MLMODEL not in files:
        hint = _where_mlmodel_is(files)
        raise ModelError(
            f"model={url}: no MLmodel file there ({len(files)} files found)",
            hint or "give the URL of the folder that directly contains MLmodel (the trainer step's output)",
        )
    raw = store.read(join_url(url, MLMODEL))
    mlmodel = parse_mlmodel(raw.decode("utf-8", "replace"), f"{url}/{MLMODEL}")
    signature = mlmodel.signature()
    example = _example(mlmodel, url, files, store)
    info = ModelInfo(
        url=url,
        flavors=mlmodel.flavors,
        files=files,
        inputs=signature.inputs if signature else (),
        example_columns=example.columns if example else None,
        example_rows=example.rows if example else (),
        mlflow_version=mlmodel.mlflow_version,
        mlmodel_bytes=raw,
        requirements=_requirements(url, files, store),
    )
    log.info("model %s: %s", url, info.summary())
    return info


def _example(mlmodel: MLmodel, url: str, files: tuple[str, ...], store: ArtifactStore) -> InputExample | None:
    """The saved input example, when it is a split dataframe; else the probe falls back to the signature."""
    where = mlmodel.example_file
    if where is None or where.path not in files:
        return None
    try:
        example = parse_input_example(store.read(join_url(url, where.path)), f"{url}/{where.path}")
    except (StorageError, ModelError) as e:
        log.warning("model %s: input example %s is unreadable (%s); using the signature", url, where.path, e)
        return None
    if example is None:
        log.info("model %s: input example of type %s is not a split dataframe; using the signature", url, where.type)
    return example


def _requirements(url: str, files: tuple[str, ...], store: ArtifactStore) -> tuple[str, ...]:
    """The model's requirements.txt lines: the library versions it was saved with decide which server loads it."""
    if REQUIREMENTS_TXT not in files:
        return ()
    try:
        text = store.read(join_url(url, REQUIREMENTS_TXT)).decode("utf-8", "replace")
    except StorageError as e:
        log.warning("model %s: %s is unreadable (%s); using the versions MLmodel records", url, REQUIREMENTS_TXT, e)
        return ()
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _where_mlmodel_is(files: tuple[str, ...]) -> str | None:
    nested = [f[: -len(MLMODEL) - 1] for f in files if f.endswith("/" + MLMODEL)]
    if nested:
        return f"an MLmodel is in the subfolder {nested[0]!r}: append it to the model URL"
    return None
