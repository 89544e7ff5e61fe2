"""Environment specs: precedence, normalisation, conda translation, clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from common.envspec import (
    TRAINER_REQUIREMENTS,
    find_environment_file,
    load_envspec,
    normalise_python,
    python_satisfies,
)
from common.envspec.conda import split_conda_spec
from common.errors import CodesetError

ROOT = Path(__file__).resolve().parents[2]


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_trainer_requirements_match_the_trainer_extra() -> None:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["trainer"]
    assert sorted(TRAINER_REQUIREMENTS) == sorted(extra)


def test_precedence_python_env_then_conda_then_requirements(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "numpy\n"})
    assert find_environment_file(tmp_path).name == "requirements.txt"
    write(tmp_path, {"conda.yaml": "dependencies: [numpy]\n"})
    assert find_environment_file(tmp_path).name == "conda.yaml"
    write(tmp_path, {"python_env.yaml": "dependencies: [numpy]\n"})
    assert find_environment_file(tmp_path).name == "python_env.yaml"


def test_mlproject_reference_wins(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "python_env.yaml": "dependencies: [numpy]\n",
            "envs/prod.yaml": "channels: [defaults]\ndependencies: [pandas]\n",
            "MLproject": "name: x\nconda_env: envs/prod.yaml\nentry_points: {main: {command: 'python t.py'}}\n",
        },
    )
    spec = load_envspec(tmp_path)
    assert "pandas" in spec.requirements and "numpy" not in spec.requirements


def test_mlproject_reference_to_missing_file(tmp_path: Path) -> None:
    write(tmp_path, {"MLproject": "name: x\npython_env: nope.yaml\n", "requirements.txt": "numpy\n"})
    with pytest.raises(CodesetError, match="nope.yaml.*does not exist"):
        load_envspec(tmp_path)


def test_no_environment_file(tmp_path: Path) -> None:
    with pytest.raises(CodesetError, match="no environment file.*requirements.txt"):
        load_envspec(tmp_path)


def test_order_whitespace_comments_and_spelling_do_not_matter(tmp_path: Path) -> None:
    a = write(tmp_path / "a", {"requirements.txt": "numpy>=1.2,<2\nScikit_Learn==1.9.1\n"})
    b = write(
        tmp_path / "b",
        {"requirements.txt": "# deps\n\n  scikit-learn == 1.9.1   # pinned\nnumpy <2, >=1.2\nnumpy<2,>=1.2\n"},
    )
    assert load_envspec(a).canonical() == load_envspec(b).canonical()


def test_same_environment_in_any_file_format(tmp_path: Path) -> None:
    a = write(tmp_path / "a", {"requirements.txt": "pandas==2.3.3\n"})
    b = write(
        tmp_path / "b",
        {"python_env.yaml": "dependencies:\n  - -r requirements.txt\n", "requirements.txt": "pandas==2.3.3\n"},
    )
    assert load_envspec(a).canonical() == load_envspec(b).canonical()


def test_one_changed_requirement_changes_the_spec(tmp_path: Path) -> None:
    a = write(tmp_path / "a", {"requirements.txt": "pandas==2.3.3\n"})
    b = write(tmp_path / "b", {"requirements.txt": "pandas==2.3.2\n"})
    assert load_envspec(a).canonical() != load_envspec(b).canonical()


def test_trainer_needs_are_added_unless_named(tmp_path: Path) -> None:
    spec = load_envspec(write(tmp_path / "a", {"requirements.txt": "numpy\n"}))
    assert set(TRAINER_REQUIREMENTS) <= set(spec.requirements)
    spec = load_envspec(write(tmp_path / "b", {"requirements.txt": "MLflow>=3\n"}))
    assert "mlflow>=3" in spec.requirements and "mlflow==3.17.2" not in spec.requirements
    assert "boto3==1.44.8" in spec.requirements


def test_python_env_full(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "python_env.yaml": (
                "python: '3.11.4'\nbuild_dependencies:\n  - pip\n  - setuptools\n"
                "dependencies:\n  - -r requirements.txt\n  - pandas\n"
            ),
            "requirements.txt": "-c constraints.txt\n--extra-index-url https://example.org/simple\nnumpy \\\n  >=1\n",
            "constraints.txt": "numpy<3\n",
        },
    )
    spec = load_envspec(tmp_path)
    assert spec.python == "3.11"
    assert spec.build_dependencies == ("pip", "setuptools")
    assert {"numpy>=1", "pandas"} <= set(spec.requirements)
    assert spec.constraints == ("numpy<3",)
    assert spec.pip_options == ("--extra-index-url https://example.org/simple",)
    assert spec.requirements_text().startswith("--extra-index-url https://example.org/simple\n")


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"python_env.yaml": "python: '3.11'\ndependencies:\n  - numpy\n - pandas: [\n"})
    with pytest.raises(CodesetError, match=r"python_env.yaml, line \d+, column \d+"):
        load_envspec(tmp_path)


def test_wrong_types_are_named(tmp_path: Path) -> None:
    write(tmp_path / "a", {"conda.yaml": "dependencies: numpy\n"})
    with pytest.raises(CodesetError, match="conda.yaml: 'dependencies' must be a list, got a string; fix it or delete"):
        load_envspec(tmp_path / "a")
    write(tmp_path / "b", {"python_env.yaml": "dependencies: {numpy: 1}\n"})
    with pytest.raises(CodesetError, match="'dependencies' must be a list, got a mapping"):
        load_envspec(tmp_path / "b")


def test_invalid_requirement_and_unsupported_lines(tmp_path: Path) -> None:
    write(tmp_path / "a", {"requirements.txt": "numpy>>1\n"})
    with pytest.raises(CodesetError, match="'numpy>>1' is not a valid requirement"):
        load_envspec(tmp_path / "a")
    write(tmp_path / "b", {"requirements.txt": "-e .\n"})
    with pytest.raises(CodesetError, match="editable"):
        load_envspec(tmp_path / "b")
    write(tmp_path / "c", {"requirements.txt": "-r ../../etc/passwd\n"})
    with pytest.raises(CodesetError, match="outside the codeset"):
        load_envspec(tmp_path / "c")


def test_urls_are_kept(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "git+https://example.org/x.git#egg=x\nfoo @ https://example.org/foo.whl\n"})
    spec = load_envspec(tmp_path)
    assert "git+https://example.org/x.git#egg=x" in spec.requirements
    assert "foo @ https://example.org/foo.whl" in spec.requirements


def test_conda_translation(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "conda.yaml": (
                "name: wine\nchannels: [conda-forge]\ndependencies:\n"
                "  - python=3.11\n  - pip\n  - numpy=1.26\n  - conda-forge::pandas>=2\n"
                "  - pytorch\n  - scikit-learn 1.9.1 py311_0\n"
                "  - pip:\n    - mlflow==3.17.2\n    - cloudpickle\n"
            )
        },
    )
    spec = load_envspec(tmp_path)
    assert spec.python == "3.11"
    assert {"numpy==1.26.*", "pandas>=2", "torch", "scikit-learn==1.9.1.*", "mlflow==3.17.2", "cloudpickle"} <= set(
        spec.requirements
    )
    assert any("channels" in note for note in spec.notes)


def test_conda_only_packages_are_named(tmp_path: Path) -> None:
    write(tmp_path, {"conda.yaml": "dependencies:\n  - numpy\n  - cudatoolkit=11.8\n  - cudnn\n"})
    with pytest.raises(CodesetError, match="cudatoolkit, cudnn.*nvidia-cudnn-cu12"):
        load_envspec(tmp_path)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("numpy", ("numpy", "")),
        ("numpy=1.21", ("numpy", "==1.21.*")),
        ("numpy=1.21.5=py39h_0", ("numpy", "==1.21.5.*")),
        ("numpy=1.*", ("numpy", "==1.*")),
        ("numpy==1.21.5", ("numpy", "==1.21.5")),
        ("numpy >=1.2,<2", ("numpy", ">=1.2,<2")),
        ("conda-forge::Scikit_Learn", ("scikit-learn", "")),
    ],
)
def test_split_conda_spec(spec: str, expected: tuple[str, str]) -> None:
    assert split_conda_spec(spec, "conda.yaml") == expected


def test_python_versions() -> None:
    assert normalise_python("3.11.4", "f") == "3.11"
    assert normalise_python(">=3.9", "f") == ">=3.9"
    assert python_satisfies("3.11", "3.11.2")
    assert not python_satisfies("3.10", "3.11.2")
    assert python_satisfies(">=3.9,<3.12", "3.11.2")
    assert python_satisfies(None, "3.11.2")
    with pytest.raises(CodesetError, match="neither a version"):
        normalise_python("three", "f")
