"""The trainer's settings: defaults, and the registry inputs checked with MLflow's own rules before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.codeset import Codeset
from common.errors import InputError
from common.inputs import Inputs
from steps.trainer.settings import TrainerSettings


def settings(tmp_path: Path, **variables: str) -> TrainerSettings:
    (tmp_path / "MLproject").write_text("name: t\nentry_points:\n  main:\n    command: 'python t.py'\n")
    return TrainerSettings.from_inputs(Inputs(variables), Codeset.at(tmp_path))


def test_defaults_register_nothing(tmp_path: Path) -> None:
    found = settings(tmp_path)
    assert (found.entry_point, found.artifact_path, found.register_model, found.model_alias) == (
        "main",
        "model",
        None,
        None,
    )


def test_a_registered_name_with_an_alias(tmp_path: Path) -> None:
    found = settings(tmp_path, FUSEML_REGISTER_MODEL="wine quality", **{"FUSEML_MODEL-ALIAS": "champion-2"})
    assert (found.register_model, found.model_alias) == ("wine quality", "champion-2")


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"FUSEML_MODEL_ALIAS": "champion"}, "FUSEML_MODEL_ALIAS is set but FUSEML_REGISTER_MODEL is not; set "),
        ({"FUSEML_REGISTER_MODEL": "wine:prod"}, "FUSEML_REGISTER_MODEL='wine:prod' is not valid: Invalid model name"),
        ({"FUSEML_REGISTER_MODEL": "../wine"}, "FUSEML_REGISTER_MODEL='../wine' is not valid"),
        ({"FUSEML_REGISTER_MODEL": "w", "FUSEML_MODEL_ALIAS": "best.model"}, "FUSEML_MODEL_ALIAS='best.model' is not"),
        ({"FUSEML_REGISTER_MODEL": "w", "FUSEML_MODEL_ALIAS": "Latest"}, "'latest' alias name (case insensitive)"),
        ({"FUSEML_REGISTER_MODEL": "w", "FUSEML_MODEL_ALIAS": "V3"}, "Version alias name 'V3' is reserved"),
        (
            {"FUSEML_REGISTER_MODEL": "w", "FUSEML_MODEL_ALIAS": "a" * 256},
            "a...' is not valid: 'Registered model alias name' exceeds the maximum length",
        ),
    ],
    ids=["alias-alone", "colon", "dot-dot", "dot-in-alias", "latest", "version-alias", "too-long"],
)
def test_names_the_registry_would_refuse_fail_here_in_one_line(tmp_path: Path, variables, message) -> None:
    with pytest.raises(InputError) as raised:
        settings(tmp_path, **variables)
    text = str(raised.value)
    assert message in text and "\n" not in text, text
