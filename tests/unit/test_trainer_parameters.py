"""Entry point parameters: parsed, merged and checked before anything runs."""

import pytest

from common.codeset import Codeset
from common.errors import CodesetError, InputError
from common.inputs import Inputs
from steps.trainer.parameters import parse_args, resolve_parameters

MLPROJECT = """
name: t
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      n: {type: int, default: 3}
      data: string
    command: "python t.py {alpha} {n} {data}"
"""


@pytest.fixture
def codeset(tmp_path):
    (tmp_path / "MLproject").write_text(MLPROJECT)
    return Codeset.at(tmp_path)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("a=1 b=2", {"a": "1", "b": "2"}),
        ("a=1,b=2", {"a": "1", "b": "2"}),
        ("-P a=1 -P b=x=y", {"a": "1", "b": "x=y"}),
        ("--a=1 msg='hello world'", {"a": "1", "msg": "hello world"}),
        ("", {}),
    ],
)
def test_parse_args(text, expected):
    assert parse_args(text) == expected


def test_parse_args_rejects_a_bare_word():
    with pytest.raises(InputError, match="'alpha' is not a name=value pair"):
        parse_args("alpha")


def test_explicit_args_win_over_per_parameter_inputs(codeset):
    inputs = Inputs({"FUSEML_MLFLOW_ENTRYPOINT_ARGS": "alpha=0.9", "FUSEML_ALPHA": "0.1", "FUSEML_DATA": "d"})
    values = resolve_parameters(codeset.entry_point("main"), inputs, "main")
    assert values == {"alpha": "0.9", "data": "d"}


def test_unknown_argument_lists_the_declared_ones(codeset):
    inputs = Inputs({"FUSEML_MLFLOW_ENTRYPOINT_ARGS": "alhpa=0.9 data=x"})
    with pytest.raises(InputError, match=r"no parameter 'alhpa' \(parameters: alpha, n, data\)"):
        resolve_parameters(codeset.entry_point("main"), inputs, "main")


def test_wrong_type_names_parameter_and_type(codeset):
    inputs = Inputs({"FUSEML_MLFLOW_ENTRYPOINT_ARGS": "alpha=high data=x"})
    with pytest.raises(InputError, match="'alpha' of entry point 'main' is declared float but got 'high'"):
        resolve_parameters(codeset.entry_point("main"), inputs, "main")
    with pytest.raises(InputError, match="declared int"):
        resolve_parameters(codeset.entry_point("main"), Inputs({"FUSEML_N": "2.5", "FUSEML_DATA": "x"}), "main")


def test_missing_required_parameter(codeset):
    with pytest.raises(InputError, match="needs a value for 'data'"):
        resolve_parameters(codeset.entry_point("main"), Inputs({}), "main")


def test_unknown_entry_point_lists_known_ones(codeset):
    with pytest.raises(CodesetError, match=r"no entry point 'train' \(entry points: main\)"):
        codeset.entry_point("train")


def test_no_mlproject(tmp_path):
    with pytest.raises(CodesetError, match="no MLproject file in the codeset"):
        Codeset.at(tmp_path).entry_point("main")


def test_malformed_mlproject_names_file_and_line(tmp_path):
    (tmp_path / "MLproject").write_text("name: x\nentry_points:\n  main: [\n")
    with pytest.raises(CodesetError, match=r"MLproject:\d+: invalid YAML"):
        Codeset.at(tmp_path).entry_point("main")


def test_fuseml_metadata_names_the_experiment(tmp_path):
    (tmp_path / ".fuseml").mkdir()
    (tmp_path / ".fuseml" / "_org").write_text("acme\n")
    (tmp_path / ".fuseml" / "_project").write_text("wine\n")
    assert Codeset.at(tmp_path).name == "acme.wine"


@pytest.mark.parametrize(
    "text",
    [
        "name: x\nentry_points:\n  main: [\n",  # bad YAML
        "- just\n- a list\n",
        "entry_points: [main]\n",
        "entry_points:\n  main: {parameters: {}}\n",
        "entry_points:\n  main: {command: run, parameters: [a]}\n",
    ],
)
def test_every_malformed_mlproject_error_says_what_to_do(tmp_path, text):
    (tmp_path / "MLproject").write_text(text)
    with pytest.raises(CodesetError) as caught:
        Codeset.at(tmp_path).entry_point("main")
    assert caught.value.hint and "fix the MLproject file" in caught.value.hint
    assert "\n" not in str(caught.value)


def test_a_path_parameter_that_does_not_exist_is_an_input_error_before_any_run(tmp_path, monkeypatch):
    from steps.trainer.step import _entry_point_command

    (tmp_path / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters: {data: path}\n    command: 'python t.py {data}'\n"
    )
    (tmp_path / "present.csv").write_text("a\n")
    monkeypatch.chdir(tmp_path)
    entry = Codeset.at(tmp_path).entry_point("main")
    with pytest.raises(InputError, match=r"entry point 'main': Got value missing.csv for parameter data") as caught:
        _entry_point_command(entry, {"data": "missing.csv"}, str(tmp_path), "main")
    assert "give an existing file or folder" in str(caught.value)
    command = _entry_point_command(entry, {"data": "present.csv"}, str(tmp_path), "main")
    assert command == f"python t.py {tmp_path / 'present.csv'}"
