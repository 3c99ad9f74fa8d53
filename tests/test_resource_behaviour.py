"""The AF501 fix changes behaviour, not only text: the fixture module is run against a real
aiohttp server on 127.0.0.1. The ``before`` module leaves client sessions open: only the
garbage collector ends them, and aiohttp complains "Unclosed client session" and "Unclosed
connector" for each. The ``after`` module -- what asyncfix writes -- closes every one, on
success and when the code raises, and the server holds no connection afterwards."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import itertools
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web

from tests.helpers import fixed_text, run_text

FIXTURES = Path(__file__).parent / "fixtures" / "AF501"
_counter = itertools.count()


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_resource_fixture_{next(_counter)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _handler(request: web.Request) -> web.Response:
    if request.path == "/missing":
        return web.Response(status=404, text="no such thing")
    return web.Response(text="ok")


async def _exercise(module: ModuleType) -> tuple[int, list[str]]:
    """Call the module's coroutines against a local server; return how many connections the
    server still holds afterwards, and the loop's unclosed-session complaints."""
    complaints: list[str] = []
    loop = asyncio.get_running_loop()

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        complaints.append(str(context.get("message")))

    loop.set_exception_handler(handler)
    server = web.Server(_handler)
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        assert await module.status(f"{base}/ok") == 200
        assert await module.checked(f"{base}/ok") == "ok"
        with pytest.raises(RuntimeError):
            await module.checked(f"{base}/missing")
        for _ in range(20):  # let the server see the closed connections
            await asyncio.sleep(0.01)
        held = len(server.connections)
        gc.collect()
        await asyncio.sleep(0)
        return held, complaints
    finally:
        await runner.cleanup()


def test_fixture_is_what_asyncfix_writes() -> None:
    before = (FIXTURES / "aiohttp_server.before.py").read_text(encoding="utf-8")
    after = (FIXTURES / "aiohttp_server.after.py").read_text(encoding="utf-8")
    assert fixed_text(run_text(before, {"AF501"})) == after


def test_before_leaks_sessions() -> None:
    _, complaints = asyncio.run(_exercise(_load(FIXTURES / "aiohttp_server.before.py")))
    # `status` and the failing `checked` leave their sessions open; the successful `checked`
    # closes its own
    assert complaints.count("Unclosed client session") == 2
    assert complaints.count("Unclosed connector") == 2


def test_after_closes_every_session() -> None:
    held, complaints = asyncio.run(_exercise(_load(FIXTURES / "aiohttp_server.after.py")))
    assert held == 0
    assert complaints == []
