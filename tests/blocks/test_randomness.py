"""The pooled random source behind ids, request ids and nonces."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

from blocks.randomness import RandomPool, token_hex, uuid4


def in_forked_child(produce: Callable[[], bytes]) -> bytes:
    """What ``produce()`` returns in a forked child of this process."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports and leaves at once
        os.close(read)
        os.write(write, produce())
        os._exit(0)
    os.close(write)
    out = b""
    while chunk := os.read(read, 4096):
        out += chunk
    os.close(read)
    os.waitpid(pid, 0)
    return out


def test_pool_hands_out_each_byte_once_across_refills() -> None:
    pool = RandomPool(chunk=64)
    taken = [pool.take(16) for _ in range(40)]  # ten refills
    assert all(len(t) == 16 for t in taken)
    assert len(set(taken)) == len(taken)
    assert len(pool.take(100)) == 100  # more than a chunk: straight from the OS


def test_uuid4_and_token_hex_have_the_standard_shape() -> None:
    ids = [uuid4() for _ in range(2000)]
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    assert uuid.UUID(str(ids[0])) == ids[0]
    token = token_hex(8)
    assert len(token) == 16 and int(token, 16) >= 0


def test_a_forked_child_never_repeats_its_parents_bytes() -> None:
    pool = RandomPool(chunk=4096)
    pool.take(16)  # the parent's buffer now holds bytes the child must not hand out
    child = in_forked_child(lambda: b"".join(pool.take(16) for _ in range(10)))
    parent = [pool.take(16) for _ in range(10)]
    child_parts = [child[i : i + 16] for i in range(0, len(child), 16)]
    assert len(child_parts) == 10
    assert not set(parent) & set(child_parts)
