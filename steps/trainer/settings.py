"""The trainer's inputs (docs/contract.md), with FuseML's defaults, checked before anything runs.

A registered model name or alias MLflow would refuse must fail here, in a
second, not after the training run when the registry says no; so both are
checked with MLflow's own rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.codeset import Codeset
from common.errors import InputError
from common.inputs import Inputs

REGISTER_MODEL = "register_model"
MODEL_ALIAS = "model_alias"


@dataclass(frozen=True)
class TrainerSettings:
    """What to train, where to log it, and whether to register the model it logged."""

    experiment: str
    entry_point: str
    artifact_path: str
    register_model: str | None = None
    model_alias: str | None = None

    @classmethod
    def from_inputs(cls, inputs: Inputs, codeset: Codeset) -> TrainerSettings:
        settings = cls(
            experiment=inputs.str("mlflow_experiment", codeset.name),
            entry_point=inputs.str("mlflow_entrypoint", "main"),
            artifact_path=inputs.str("mlflow_artifact_path", "model").strip("/"),
            register_model=inputs.str(REGISTER_MODEL, None),
            model_alias=inputs.str(MODEL_ALIAS, None),
        )
        settings.check(inputs)
        return settings

    def check(self, inputs: Inputs) -> None:
        """Refuse an alias without a model to register, and names the registry would refuse."""
        if self.model_alias and not self.register_model:
            raise InputError(
                f"{inputs.variable(MODEL_ALIAS)} is set but {inputs.variable(REGISTER_MODEL)} is not",
                f"set {inputs.variable(REGISTER_MODEL)} to the registered model the alias belongs to",
            )
        if self.register_model:
            _check_with_mlflow("_validate_model_name", self.register_model, inputs.variable(REGISTER_MODEL))
        if self.model_alias:
            for rule in ("_validate_model_alias_name", "_validate_model_alias_name_reserved"):
                _check_with_mlflow(rule, self.model_alias, inputs.variable(MODEL_ALIAS))


def _check_with_mlflow(rule: str, value: str, variable: str) -> None:
    """Apply one of MLflow's own registry name rules (private helpers of ``mlflow.utils.validation``).

    A release that moved a rule leaves the check to the registry, after training.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.utils import validation

    check = getattr(validation, rule, None)
    if check is None:
        return
    try:
        check(value)
    except MlflowException as e:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InputError(f"{variable}={shown!r} is not valid: {e.message}", f"fix {variable}") from e
