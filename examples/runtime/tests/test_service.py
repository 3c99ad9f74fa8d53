"""Each test passes; the plugin still sees what went wrong in it."""

from __future__ import annotations

import asyncio

import service


def test_dispatch() -> None:
    asyncio.run(service.dispatch("refresh", "lamp"))


def test_polling() -> None:
    loop = asyncio.new_event_loop()  # closed without cancelling what still runs
    loop.run_until_complete(service.start_polling())
    loop.close()


def test_failing_job() -> None:
    asyncio.run(service.start_failing_job())


def test_read_sensor() -> None:
    assert asyncio.run(service.read_sensor()) == 21.5


def test_load_profile() -> None:
    assert asyncio.run(service.load_profile("ada")) == "ada"


def test_probe() -> None:
    assert service.probe(80)


def test_session_headers() -> None:
    assert asyncio.run(service.session_headers()) >= 0


def test_session_timeout() -> None:
    assert asyncio.run(service.session_timeout()) > 0


def test_clean() -> None:
    assert asyncio.run(service.refresh("lamp")) == "lamp"
