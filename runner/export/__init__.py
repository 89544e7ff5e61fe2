"""``fuseml-steps export``: a FuseML workflow as documents a pipeline engine on Kubernetes accepts.

- ``tekton``: the workflow as a ``tekton.dev/v1`` Pipeline and PipelineRun (the
  codeset cloned from git into a workspace, extensions as Secrets);
- ``rbac``: what the predictor's task needs to deploy InferenceServices;
- ``tekton_checks``: the checks Tekton's admission webhook makes that a schema cannot;
- ``schemas``: the documents against Tekton's CRD/OpenAPI schemas and Kubernetes' own;
- ``command``: the click command.
"""
