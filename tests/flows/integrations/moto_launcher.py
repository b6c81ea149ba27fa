"""Start ``moto_server`` with Textract answers seeded (moto answers every DetectDocumentText
with the class-level ``TextractBackend.BLOCKS``, empty by default, and cannot set it over HTTP),
and with a ``/moto-api/data.json`` that skips attributes it cannot read.

moto's own data view reads every public attribute of every model and expects only type errors;
a Lambda function's attributes ask Docker (absent here) and raise, so after a Lambda test the
view answered 500 and the tests that read sent e-mails and SMS from it failed.

Usage: python -m tests.flows.integrations.moto_launcher BLOCKS.json -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from moto.core.model_instances import model_data
from moto.moto_api._internal.responses import MotoAPIResponse
from moto.server import main
from moto.textract.models import TextractBackend


def _readable(instance: Any) -> dict[str, Any]:
    values = {}
    for attr in dir(instance):
        if attr.startswith("_"):
            continue
        try:
            value = getattr(instance, attr)
            json.dumps(value)
        except Exception:  # noqa: BLE001 - an attribute that cannot be read or sent is left out
            continue
        values[attr] = value
    return values


def _model_data(self: Any, request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    results = {
        service: {name: [_readable(i) for i in model.instances_tracked] for name, model in sorted(models.items())}
        for service, models in sorted(model_data.items())
    }
    return 200, {"Content-Type": "application/javascript"}, json.dumps(results)


if __name__ == "__main__":
    TextractBackend.BLOCKS = json.loads(Path(sys.argv[1]).read_text())
    MotoAPIResponse.model_data = _model_data  # type: ignore[method-assign]
    main(sys.argv[2:])
