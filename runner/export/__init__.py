"""``fuseml-steps export``: a FuseML workflow as documents a pipeline engine on Kubernetes accepts.

- ``tekton``: the workflow as a ``tekton.dev/v1`` Pipeline and PipelineRun (the
  codeset cloned from git into a workspace, extensions as Secrets);
- ``rbac``: what the predictor's task needs to deploy InferenceServices;
- ``tekton_checks``: the checks Tekton's admission webhook makes that a schema cannot;
- ``schemas``: the documents against Tekton's CRD/OpenAPI schemas and Kubernetes' own;
- ``kfp_pipeline``: the workflow as the plan of a Kubeflow Pipelines v2 pipeline (plain data);
- ``kfp_components``: our steps (and any other image) as KFP container components, ``deploy/kfp/components``;
- ``kfp_sdk``: finding a Python with the ``kfp`` SDK (its own virtualenv) and compiling there;
- ``kfp_compile``: the SDK half, run by that Python: the plan to a pipeline, compiled to IR YAML;
- ``command``: the click command.
"""
