"""Drive ``tritonclient.grpc`` against a runtime and print what it got, as JSON: run in a process of its own.

Triton's client and KServe both register the OIP proto's messages
(``inference.ServerLiveRequest``, ...) in protobuf's one descriptor pool under
different file names, so the two cannot be imported into one Python process.
The test process has KServe; this script has Triton's client, and reports
what the server answered so the test can judge it.

    python -m tests.integration.triton_grpc_client HOST:PORT MODEL < {"tensors": {"FP32": [[...]], ...}, ...}
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_,
          "BYTES": np.object_}  # fmt: skip


def tensor(datatype: str, values: Any) -> triton.InferInput:
    array = np.array(values, dtype=DTYPES[datatype])
    item = triton.InferInput("input-0", list(array.shape), datatype)
    item.set_data_from_numpy(array)
    return item


def refusal(call: Any) -> list[str]:
    try:
        call()
    except InferenceServerException as e:
        return [str(e.status()), str(e.message())]
    return ["OK", ""]


def main(address: str, model: str, plan: dict[str, Any]) -> dict[str, Any]:
    client = triton.InferenceServerClient(address)
    try:
        report: dict[str, Any] = {
            "live": client.is_server_live(),
            "ready": client.is_server_ready(),
            "model_ready": client.is_model_ready(model),
            "server": client.get_server_metadata(as_json=True),
            "metadata": client.get_model_metadata(model, as_json=True),
            "answers": {},
            "refusals": {},
        }
        for datatype, values in plan["tensors"].items():
            result = client.infer(model, [tensor(datatype, values)], request_id=f"t-{datatype}")
            report["answers"][datatype] = {
                "id": result.get_response().id,
                "output": result.as_numpy(plan["output"]).tolist(),
            }
        for name, (datatype, values) in plan["refused"].items():
            report["refusals"][name] = refusal(lambda d=datatype, v=values: client.infer(model, [tensor(d, v)]))
        good = tensor(*plan["good"])
        report["refusals"]["unknown-model"] = refusal(lambda: client.infer("nope", [good]))
        report["refusals"]["versioned"] = refusal(lambda: client.infer(model, [good], model_version="1"))
        return report
    finally:
        client.close()


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], json.load(sys.stdin))))
