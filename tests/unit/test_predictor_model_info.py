"""Model inspection of real saved MLflow models (local folders; the S3 case is an integration test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from common.errors import InputError
from common.storage import LocalStore
from steps.predictor.kserve_servers import SKLEARN_SERVER
from steps.predictor.model_info import ModelError, inspect_model
from steps.predictor.runtime_choice import choose
from tests.fixtures.models import WINE_FEATURES


def test_default_sklearn_model_is_skops_and_goes_to_our_runtime(wine_model_dir: Path) -> None:
    info = inspect_model(str(wine_model_dir), LocalStore())
    assert set(info.flavors) == {"python_function", "sklearn"}
    assert info.flavor("sklearn")["serialization_format"] == "skops"
    assert info.sklearn_server_files == ()
    assert [c.name for c in info.inputs] == WINE_FEATURES and {c.type for c in info.inputs} == {"double"}
    assert info.example_columns == tuple(WINE_FEATURES) and len(info.example_rows) == 3
    assert choose(info).runtime == "fuseml-mlflow"


def test_pickle_sklearn_model_of_another_version_than_the_sklearn_servers_goes_to_our_runtime(
    wine_model_pickle_dir: Path,
) -> None:
    info = inspect_model(f"file://{wine_model_pickle_dir}/", LocalStore())
    assert info.sklearn_server_files == ("model.pkl",)
    saved = info.pinned_version("scikit-learn")  # from the requirements.txt MLflow wrote beside MLmodel
    assert saved == info.flavor("sklearn")["sklearn_version"] and saved != SKLEARN_SERVER.version
    choice = choose(info)
    assert choice.runtime == "fuseml-mlflow"
    assert f"scikit-learn {saved} and the server has {SKLEARN_SERVER.version}" in choice.reason


def test_a_copy_beside_the_model_file_sends_it_away_from_the_sklearn_server(
    wine_model_pickle_dir: Path, tmp_path: Path
) -> None:
    model = shutil.copytree(wine_model_pickle_dir, tmp_path / "model")
    shutil.copy(model / "model.pkl", model / "model.joblib")
    info = inspect_model(str(model), LocalStore())
    assert choose(info).runtime == "fuseml-mlflow"
    with pytest.raises(InputError, match=r"exactly one model file.*model.joblib"):
        choose(info, "sklearn")


def test_no_mlmodel_says_where_it_is(wine_model_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(wine_model_dir, tmp_path / "artifacts" / "model")
    with pytest.raises(ModelError, match="in the subfolder 'model'"):
        inspect_model(str(tmp_path / "artifacts"), LocalStore())
    with pytest.raises(ModelError, match="no MLmodel file there"):
        inspect_model(str(tmp_path / "nothing"), LocalStore())
    with pytest.raises(InputError, match="not the MLmodel file"):
        inspect_model(str(tmp_path / "artifacts" / "model" / "MLmodel"), LocalStore())


def test_broken_mlmodel_and_example(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: [unclosed")
    with pytest.raises(ModelError, match="not valid YAML"):
        inspect_model(str(tmp_path), LocalStore())
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    with pytest.raises(ModelError, match="'flavors' is missing or empty"):
        inspect_model(str(tmp_path), LocalStore())
    (tmp_path / "MLmodel").write_text(
        "flavors: {python_function: {}}\nsaved_input_example_info: {artifact_path: input_example.json}\n"
    )
    (tmp_path / "input_example.json").write_text("{not json")
    info = inspect_model(str(tmp_path), LocalStore())  # an unreadable example is not fatal
    assert info.example_rows == () and info.inputs == ()
