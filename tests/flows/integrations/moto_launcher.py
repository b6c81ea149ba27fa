"""Start ``moto_server`` with Textract answers seeded (moto answers every DetectDocumentText
with the class-level ``TextractBackend.BLOCKS``, empty by default, and cannot set it over HTTP).

Usage: python -m tests.flows.integrations.moto_launcher BLOCKS.json -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from moto.server import main
from moto.textract.models import TextractBackend

if __name__ == "__main__":
    TextractBackend.BLOCKS = json.loads(Path(sys.argv[1]).read_text())
    main(sys.argv[2:])
