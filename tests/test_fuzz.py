"""Property-based fuzzing of the codec and the engine (bounded for CI; the long run is
bench/fuzz_codec.py): no input makes them raise anything but the codec's own errors,
and every XML reply the engine emits is schema-valid (ValidatingEngine)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz_codec import TOKENS, seeds
from tests.conftest import make_vtn
from vtn.codec import CodecError, decode
from vtn.config import load_config
from vtn.services.dispatch import SERVICES

SEEDS = seeds()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        j = min(len(data), i + draw(st.integers(0, 48)))
        op = draw(st.integers(0, 4))
        if op == 0:
            data[i:j] = draw(st.binary(max_size=16))
        elif op == 1:
            data[i:i] = draw(st.sampled_from(TOKENS))
        elif op == 2:
            del data[i:j]
        elif op == 3:
            data[i:i] = data[i:j] * draw(st.integers(1, 5))
        else:
            text = draw(st.text(max_size=20)).replace("<", "&lt;").replace("&", "&amp;")
            data[i:j] = text.encode()
    return bytes(data)


@FUZZ
@given(body=st.one_of(mutated(), st.binary(max_size=200)))
def test_decode_raises_only_codec_errors(body: bytes) -> None:
    try:
        decode(body)
    except CodecError:
        pass


@pytest.fixture
def engine_loop(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = load_config(None, data_dir=tmp_path / "data")
    config.registration.open_enrollment = True
    loop = asyncio.new_event_loop()
    vtn = make_vtn(config)
    loop.run_until_complete(vtn.start())
    yield vtn, loop
    loop.run_until_complete(vtn.stop())
    loop.close()


def test_engine_never_fails_with_a_5xx(engine_loop) -> None:  # type: ignore[no-untyped-def]
    vtn, loop = engine_loop

    @FUZZ
    @given(body=mutated(), service=st.sampled_from(sorted(SERVICES)))
    def run(body: bytes, service: str) -> None:
        reply = loop.run_until_complete(vtn.engine.handle(service, body))
        assert reply.status < 500, reply.body[:300]

    run()
