"""A small stateful stand-in for the few GitHub endpoints the bot uses, behind Prism.

The bot's tests talk to Prism (``prism proxy``) serving GitHub's own OpenAPI description:
it checks every request against GitHub's contract (an invalid one gets a 422 with the
violations) and forwards the valid ones to ``FakeGitHub``, whose answers it checks too (an
answer that breaks the contract becomes a 500). FakeGitHub keeps pull requests as state and
builds each answer from the description's own examples, with the fields that matter set.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONTRACT = Path(__file__).parent / "contract"
SPEC = CONTRACT / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"
PRISM = CONTRACT / "node_modules" / ".bin" / "prism"
EXAMPLE_REPO = "octocat/Hello-World"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pull:
    number: int
    title: str
    body: str
    head: str
    base: str
    state: str = "open"
    merged: bool = False
    labels: list[str] = field(default_factory=list)


def complete(value: Any, schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """``value`` with the required properties GitHub's examples lack (they drift from the
    schemas) filled with empty values of the right type."""
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    for key in ("allOf",):
        for part in schema.get(key, []):
            value = complete(value, part, spec)
    if value is None:
        return None
    for key in ("anyOf", "oneOf"):
        options = [o for o in schema.get(key, []) if "$ref" in o or o.get("type") != "null"]
        if options and isinstance(value, dict):
            return complete(value, options[0], spec)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                value[name] = _empty(properties.get(name, {}), spec)
        for name, sub in properties.items():
            if name in value:
                value[name] = complete(value[name], sub, spec)
    elif isinstance(value, list) and "items" in schema:
        return [complete(item, schema["items"], spec) for item in value]
    return value


def _empty(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    kind = schema.get("type")
    if schema.get("nullable") or (isinstance(kind, list) and "null" in kind):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    if "allOf" in schema or "anyOf" in schema or "oneOf" in schema:
        parts = schema.get("allOf") or schema.get("anyOf") or schema.get("oneOf")
        return _empty(parts[0], spec)
    defaults: dict[str, Any] = {"string": "", "integer": 0, "number": 0, "boolean": False}
    if kind == "array":
        return []
    if kind == "object" or "properties" in schema:
        return complete({}, schema, spec)
    return defaults.get(kind if isinstance(kind, str) else "string", "")


class FakeGitHub:
    """State: one repository, its pull requests, the requests it received."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.examples = spec["components"]["examples"]
        self.public_url = ""  # where clients reach it (Prism's address)
        self.slug = "acme/service"
        self.default_branch = "main"
        #: the bare repository the bot pushes to: a head branch must exist there
        self.remote: Path | None = None
        self.pulls: list[Pull] = []
        self.requests: list[tuple[str, str, Any]] = []
        #: head branches GitHub refuses a pull request for (as for a branch without commits)
        self.refused: set[str] = set()
        self.lock = threading.Lock()

    def reset(self, slug: str, remote: Path) -> None:
        with self.lock:
            self.slug, self.remote = slug, remote
            self.pulls, self.requests, self.refused = [], [], set()

    def writes(self) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] != "GET"]

    # -- answers -------------------------------------------------------------------------

    def _example(self, name: str, number: int | None = None) -> Any:
        text = json.dumps(self.examples[name]["value"])
        text = text.replace("https://api.github.com", self.public_url)
        text = text.replace(EXAMPLE_REPO, self.slug)
        if number is not None:
            text = text.replace("/pulls/1347", f"/pulls/{number}")
            text = text.replace("/issues/1347", f"/issues/{number}")
            text = text.replace("/pull/1347", f"/pull/{number}")
        return json.loads(text)

    def _pull_json(self, pull: Pull, simple: bool = False) -> dict[str, Any]:
        data = (
            self._example("pull-request-simple-items", pull.number)[0]
            if simple
            else self._example("pull-request", pull.number)
        )
        owner = self.slug.split("/")[0]
        data.update(
            number=pull.number,
            id=1000 + pull.number,
            title=pull.title,
            body=pull.body,
            state=pull.state,
            merged_at="2026-11-30T12:00:00Z" if pull.merged else None,
            closed_at="2026-11-30T12:00:00Z" if pull.state == "closed" else None,
        )
        if not simple:
            data.update(merged=pull.merged)
        data["head"].update(ref=pull.head, label=f"{owner}:{pull.head}")
        data["base"].update(ref=pull.base, label=f"{owner}:{pull.base}")
        return self._complete(data, "pull-request-simple" if simple else "pull-request")

    def _complete(self, value: Any, schema: str) -> Any:
        return complete(value, {"$ref": f"#/components/schemas/{schema}"}, self.spec)

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path, body))
            prefix = f"/repos/{self.slug}"
            if not path.startswith(prefix):
                return 404, {"message": "Not Found", "documentation_url": "https://docs"}
            rest = path[len(prefix) :]
            if method == "GET" and rest == "":
                repo = self._example("full-repository-default-response")
                repo.update(default_branch=self.default_branch, full_name=self.slug)
                return 200, self._complete(repo, "full-repository")
            if method == "GET" and rest == "/pulls":
                return 200, self._list(query)
            if method == "POST" and rest == "/pulls":
                return self._create(body)
            parts = rest.strip("/").split("/")
            if len(parts) >= 2 and parts[0] in ("pulls", "issues") and parts[1].isdigit():
                pull = next((p for p in self.pulls if p.number == int(parts[1])), None)
                if pull is None:
                    return 404, {"message": "Not Found", "documentation_url": "https://docs"}
                if method == "GET" and parts[0] == "pulls" and len(parts) == 2:
                    return 200, self._pull_json(pull)
                if method == "PATCH" and parts[0] == "pulls" and len(parts) == 2:
                    for key in ("title", "body", "state"):
                        if key in body:
                            setattr(pull, key, body[key])
                    return 200, self._pull_json(pull)
                if method == "POST" and parts[0] == "issues" and parts[2:] == ["labels"]:
                    names = body if isinstance(body, list) else body.get("labels", [])
                    pull.labels += [n if isinstance(n, str) else n["name"] for n in names]
                    template = self._example("label-items")[0]
                    labels = [{**template, "name": n, "id": i} for i, n in enumerate(pull.labels)]
                    return 200, [self._complete(label, "label") for label in labels]
            return 404, {"message": "Not Found", "documentation_url": "https://docs"}

    def _list(self, query: dict[str, str]) -> list[dict[str, Any]]:
        state = query.get("state", "open")
        head = query.get("head")
        found = [
            p
            for p in self.pulls
            if (state == "all" or p.state == state)
            and (head is None or head == f"{self.slug.split('/')[0]}:{p.head}")
        ]
        found.sort(key=lambda p: p.number, reverse=query.get("direction", "desc") == "desc")
        return [self._pull_json(p, simple=True) for p in found]

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        head, base = body["head"], body["base"]
        if head in self.refused or not self._branch_exists(head):
            return 422, {"message": "Validation Failed", "documentation_url": "https://docs"}
        if any(p.head == head and p.state == "open" for p in self.pulls):
            return 422, {"message": "A pull request already exists", "documentation_url": "x"}
        number = 1 + max((p.number for p in self.pulls), default=0)
        pull = Pull(number, body["title"], body.get("body") or "", head, base)
        self.pulls.append(pull)
        return 201, self._pull_json(pull)

    def _branch_exists(self, branch: str) -> bool:
        if self.remote is None:
            return False
        out = subprocess.run(
            ["git", "ls-remote", "--heads", str(self.remote), f"refs/heads/{branch}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return bool(out.strip())


def serve(fake: FakeGitHub) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else {}
            status, answer = fake.handle(self.command, url.path, query, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def start_prism(upstream: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``prism proxy`` of GitHub's description in front of ``upstream``; its base URL."""
    port = free_port()
    node = shutil.which("node")
    assert node is not None
    process = subprocess.Popen(
        [
            str(PRISM),
            "proxy",
            str(SPEC),
            f"http://127.0.0.1:{upstream}",
            "--errors",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prism exited: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, url
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("prism did not start within 180 s")
