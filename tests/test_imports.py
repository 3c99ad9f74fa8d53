"""Where a fix puts `import asyncio`: the stdlib section, in isort order."""

from __future__ import annotations

import pytest

from tests.helpers import fixed_text, run_text

CASES = {
    "into the stdlib section, sorted": (
        '"""Doc."""\n\nimport logging\nimport time\nfrom typing import Any\n\n'
        "import aiohttp\n\n\nasync def f():\n    time.sleep(1)\n    logging.info(1)\n",
        '"""Doc."""\n\nimport asyncio\nimport logging\nfrom typing import Any\n\n'
        "import aiohttp\n\n\nasync def f():\n    await asyncio.sleep(1)\n    logging.info(1)\n",
    ),
    "a new section before third-party imports": (
        "from __future__ import annotations\n\nimport aiohttp\n"
        "from time import sleep as pause\n\n\nasync def f():\n    pause(1)\n",
        "from __future__ import annotations\n\nimport asyncio\n\nimport aiohttp\n\n\n"
        "async def f():\n    await asyncio.sleep(1)\n",
    ),
    "before from-imports of the section": (
        "from asyncio import create_task\n\n\nasync def f(c):\n    create_task(c())\n",
        "import asyncio\nfrom asyncio import create_task\n\n"
        "_background_tasks: set[asyncio.Task[object]] = set()\n\n\n"
        "async def f(c):\n    task = create_task(c())\n    _background_tasks.add(task)\n"
        "    task.add_done_callback(_background_tasks.discard)\n",
    ),
    "a file that does not separate sections: among its leading stdlib imports": (
        "from __future__ import annotations\n\nimport io\nimport time\nfrom . import utils\n"
        "import yarl\n\n\nasync def f():\n    time.sleep(1)\n",
        "from __future__ import annotations\n\nimport asyncio\nimport io\nfrom . import utils\n"
        "import yarl\n\n\nasync def f():\n    await asyncio.sleep(1)\n",
    ),
    "a module without imports": (
        "async def f(loop, c):\n    loop.create_task(c())\n",
        "import asyncio\n\n_background_tasks: set[asyncio.Task[object]] = set()\n\n\n"
        "async def f(loop, c):\n    task = loop.create_task(c())\n    _background_tasks.add(task)\n"
        "    task.add_done_callback(_background_tasks.discard)\n",
    ),
}


@pytest.mark.parametrize(("before", "after"), CASES.values(), ids=CASES.keys())
def test_import_placement(before: str, after: str) -> None:
    result = run_text(before, {"AF201", "AF301"})
    assert fixed_text(result) == after


def test_target_before_39_gets_an_unannotated_task_set() -> None:
    result = run_text(
        "import asyncio\n\n\nasync def f(c):\n    asyncio.create_task(c())\n",
        {"AF301"},
        target=(3, 8),
    )
    assert "_background_tasks: set = set()\n" in fixed_text(result)
