"""Credentials: what sealing, masking and a worker-side credential load cost.

- seal + open of one value vs a bare AES-256-GCM encrypt + decrypt (the floor);
- ``mask`` of a 10 KB log text with 30 registered secrets vs ``str.replace`` over the same set;
- ``load_credential`` (two Prefect API reads + unseal + redactor registration) vs Prefect's own
  ``Block.aload`` of a plain ``Secret`` block, against a private Prefect server.

Run: .venv/bin/python bench/credentials.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import report, start_prefect  # noqa: E402

BENCH = "credentials"


def _time(fn, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def bench_seal() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from blocks import envelope

    key, where = os.urandom(32), envelope.SealContext("tenant", "cred", "token")

    def sealed() -> None:
        token = envelope.seal("x" * 40, key=key, key_id="dk-1", where=where)
        envelope.open_sealed(envelope.parse(token, where), key=key, where=where)

    aead = AESGCM(key)

    def bare() -> None:
        nonce = os.urandom(12)
        aead.decrypt(nonce, aead.encrypt(nonce, b"x" * 40, b"aad"), b"aad")

    report(BENCH, "seal+open one value", "us", _time(sealed, 2000), _time(bare, 2000), "bare AESGCM encrypt+decrypt")


def bench_mask() -> None:
    from blocks.redact import Redactor, encoded_forms

    redactor = Redactor()
    secrets = [f"secret-{uuid.uuid4().hex}" for _ in range(30)]
    for secret in secrets:
        redactor.register(secret)
    forms = sorted(set().union(*(encoded_forms(s) for s in secrets)), key=len, reverse=True)
    text = ("GET /api?token=" + secrets[7] + " answered 500 " + "lorem ipsum " * 80) * 10

    def replace() -> None:
        out = text
        for form in forms:
            out = out.replace(form, "***")

    report(
        BENCH,
        "mask 10KB text, 30 secrets",
        "us",
        _time(lambda: redactor.mask(text), 300),
        _time(replace, 300),
        "str.replace per encoded form",
    )


async def bench_load() -> None:
    from prefect.blocks.system import Secret

    from blocks import service
    from blocks.loader import load_credential

    tenant = {"tenant_id": str(uuid.uuid4()), "tenant_slug": "bench"}
    await service.create_credential("gh", "github-token", {"token": "ghp_bench_token_value"}, **tenant)
    await Secret(value="ghp_bench_token_value").asave("bench-plain-secret", overwrite=True)
    ours, theirs = [], []
    for _ in range(5):  # warm both paths (clients, key cache)
        await load_credential("gh", **tenant)
        await Secret.aload("bench-plain-secret")
    for _ in range(60):
        start = time.perf_counter()
        await load_credential("gh", **tenant)
        ours.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        await Secret.aload("bench-plain-secret")
        theirs.append((time.perf_counter() - start) * 1e3)
    report(BENCH, "load_credential (sealed, masked, counted)", "ms", ours, theirs, "Prefect Secret.aload (plain)")


def main() -> None:
    bench_seal()
    bench_mask()
    start_prefect()
    asyncio.run(bench_load())


if __name__ == "__main__":
    main()
