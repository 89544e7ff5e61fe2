"""Typed step inputs over FUSEML_* variables."""

import pytest

from common.errors import InputError
from common.inputs import Inputs, split_words


def test_both_spellings_of_a_dashed_name_are_accepted():
    assert Inputs({"FUSEML_MODEL-FORMAT": "onnx"}).str("model-format") == "onnx"
    assert Inputs({"FUSEML_MODEL_FORMAT": "onnx"}).str("model-format") == "onnx"
    assert Inputs({"FUSEML_APP-NAME": "x"}).str("app_name") == "x"


def test_empty_value_counts_as_unset():
    inputs = Inputs({"FUSEML_PREDICTOR": ""})
    assert inputs.str("predictor", "auto") == "auto"
    assert not inputs.is_set("predictor")


def test_missing_required_input_names_the_variable():
    with pytest.raises(InputError, match="missing input model: set FUSEML_MODEL"):
        Inputs({}).str("model")


@pytest.mark.parametrize("value,expected", [("true", True), ("False", False), ("1", True), ("0", False)])
def test_bool(value, expected):
    assert Inputs({"FUSEML_VERBOSE": value}).bool("verbose") is expected


def test_bad_bool_names_variable_and_expectation():
    with pytest.raises(InputError, match=r'FUSEML_VERBOSE="maybe" is not valid: expected true or false'):
        Inputs({"FUSEML_VERBOSE": "maybe"}).bool("verbose")


def test_int_with_minimum():
    assert Inputs({"FUSEML_TIMEOUT": " 30 "}).int("timeout") == 30
    with pytest.raises(InputError, match="expected a whole number >= 1"):
        Inputs({"FUSEML_TIMEOUT": "0"}).int("timeout", minimum=1)
    with pytest.raises(InputError, match="expected a whole number"):
        Inputs({"FUSEML_TIMEOUT": "ten"}).int("timeout")


def test_list_splits_on_spaces_and_commas():
    assert Inputs({"FUSEML_X": "a, b  c,,d"}).list("x") == ["a", "b", "c", "d"]
    assert split_words("  ") == []


def test_map_accepts_yaml_and_json():
    assert Inputs({"FUSEML_R": "{nvidia.com/gpu: 1}"}).map("r") == {"nvidia.com/gpu": 1}
    assert Inputs({"FUSEML_R": '{"cpu": "2"}'}).map("r") == {"cpu": "2"}
    with pytest.raises(InputError, match="expected a YAML or JSON map"):
        Inputs({"FUSEML_R": "[1, 2]"}).map("r")
    with pytest.raises(InputError, match="FUSEML_R"):
        Inputs({"FUSEML_R": "{a: [}"}).map("r")


def test_choice():
    assert Inputs({"FUSEML_T": "local"}).choice("t", ("local", "kserve")) == "local"
    with pytest.raises(InputError, match="one of local, kserve"):
        Inputs({"FUSEML_T": "k8s"}).choice("t", ("local", "kserve"))
