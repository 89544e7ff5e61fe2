"""The local workflow runner: FuseML workflow YAML run on one machine, and the
local service stack (SeaweedFS, MLflow server, registry) it and the tests use."""
