"""The MLflow serving runtime: an MLflow model behind KServe's Open Inference Protocol (V2).

One runtime serves the local target, the docker target and KServe (through the
``fuseml-mlflow`` ClusterServingRuntime), so they answer the same requests the
same way. The parts, in the order a request meets them:

- ``server``: runs ``kserve.ModelServer`` (one worker, REST only) on a host and port.
- ``model``: the ``kserve.Model`` that decodes, predicts and encodes.
- ``payload``: V2 request -> numpy/pandas, with 400s that say what is wrong.
- ``signature``: the model's MLflow signature, as the runtime needs it.
- ``loader``: fetches the model (local path, ``file://``, ``s3://``) and loads it,
  scikit-learn models directly (no MLflow import: cold start), others via pyfunc.

Nothing heavy is imported here: ``serving`` starts fast.
"""
