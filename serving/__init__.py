"""The MLflow serving runtime: an MLflow model behind KServe's Open Inference Protocol (V2).

One runtime serves the local target, the docker target and KServe (through the
``fuseml-mlflow`` ClusterServingRuntime), so they answer the same requests the
same way: ``python -m serving --model URI --name NAME --port P --host H``. The
parts, from the command line to a request's answer:

- ``__main__``: loads the model, serves it, turns failures into exit codes.
- ``cli``: our flags on top of KServe's ModelServer flags, with ``FUSEML_SERVE_*`` fallbacks.
- ``loader``: fetches the model (local path, ``file://``, ``s3://``, MLflow URIs) and loads it,
  scikit-learn models directly (no MLflow import: cold start), others via pyfunc. It reads
  MLmodel with ``common.mlmodel``, the reader the predictor step uses too.
- ``sklearn_fast``: direct numpy predictions for linear scikit-learn models.
- ``skops_linear``: a plain linear regressor's weights read from its skops file, without
  importing scikit-learn or skops (cold start).
- ``server``: runs ``kserve.ModelServer`` (REST and gRPC) on a host and ports.
- ``workers``: ``--workers N|auto``, forked processes sharing the REST socket and the gRPC port.
- ``fast_lane``: answers plain V2 JSON infer requests before KServe's FastAPI app does.
- ``oip_rest``: what else KServe's app answers, made to fit the OIP REST schema (no nulls).
- ``grpc_server``: the OIP gRPC service on ``--host``, KServe's servicer on the same model.
- ``internals``: every private KServe/scikit-learn name the fast paths use, checked at
  start-up, with the public path (and one log line) when one is missing or changed.
- ``model``: the ``kserve.Model`` that decodes, predicts and encodes.
- ``payload``: V2 request -> numpy/pandas, with 400s that say what is wrong
  (V2 datatypes from ``common.v2_types``).
- ``tensor_payload``: the same for tensor signatures (ONNX, Keras, custom pyfunc): named
  tensors typed as the signature says, and outputs named and typed by its output signature.

Nothing heavy is imported here: ``serving`` starts fast. The runtime's own requirements are
``serving/requirements.txt`` and nothing else: scikit-learn and skops are imported only when a
scikit-learn model loads, so the runtime runs in any model's own environment.
"""
