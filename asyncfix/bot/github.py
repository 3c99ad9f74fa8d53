"""The GitHub side of the bot: the few REST calls it makes, through PyGithub.

Only what the bot needs: the repository's default branch, the pull requests of a head
branch, opening one, editing its title and body, adding labels. Every failure becomes a
``GitHubError`` whose message says which call failed, with GitHub's status and message (the
token never appears in it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import github
from github import Auth, GithubException

T = TypeVar("T")


class GitHubError(Exception):
    """A call to GitHub's API failed."""


@dataclass
class PullInfo:
    number: int
    state: str  # "open" | "closed"
    merged: bool
    title: str
    body: str
    url: str
    head: str


class GitHub:
    """A repository on GitHub (or GitHub Enterprise, or a test double at ``api_url``)."""

    def __init__(
        self,
        repo: str,
        token: str | None,
        api_url: str = "https://api.github.com",
        throttle: bool = True,
    ) -> None:
        self.slug = repo
        self.owner = repo.split("/", 1)[0]
        self._client = github.Github(
            auth=Auth.Token(token) if token else None,
            base_url=api_url.rstrip("/"),
            retry=None,
            # GitHub asks integrations to space their writes; a test double does not need it
            seconds_between_requests=0.25 if throttle else None,
            seconds_between_writes=1.0 if throttle else None,
            user_agent="asyncfix-bot",
        )
        self._repo: Any = None
        #: the pull requests seen, by number (to edit them without reading them again)
        self._pulls: dict[int, Any] = {}

    def close(self) -> None:
        self._client.close()

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except GithubException as exc:
            raise GitHubError(f"{what}: {_describe(exc)}") from None
        except OSError as exc:  # connection refused, DNS, TLS
            raise GitHubError(f"{what}: cannot reach the API ({exc})") from None

    def _repository(self) -> Any:
        if self._repo is None:
            self._repo = self._call(
                f"reading repository {self.slug}", lambda: self._client.get_repo(self.slug)
            )
        return self._repo

    def default_branch(self) -> str:
        return str(self._repository().default_branch)

    def pulls(self, branch: str) -> list[PullInfo]:
        """Every pull request (open or closed) whose head is ``branch`` of this repository,
        newest first."""
        repo = self._repository()

        def listed() -> list[PullInfo]:
            found = []
            for pull in repo.get_pulls(
                state="all", head=f"{self.owner}:{branch}", sort="created", direction="desc"
            ):
                self._pulls[int(pull.number)] = pull
                found.append(_info(pull))
            return found

        return self._call(f"listing the pull requests of {branch}", listed)

    def open_pull(self, branch: str, base: str, title: str, body: str) -> PullInfo:
        repo = self._repository()

        def create() -> PullInfo:
            pull = repo.create_pull(base=base, head=branch, title=title, body=body)
            self._pulls[int(pull.number)] = pull
            return _info(pull)

        return self._call(f"opening a pull request for {branch}", create)

    def update_pull(self, number: int, title: str, body: str) -> None:
        self._call(
            f"updating pull request #{number}",
            lambda: self._pull(number).edit(title=title, body=body),
        )

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        if labels:
            self._call(
                f"labelling pull request #{number}",
                # the documented body is an object ({"labels": [...]}); PyGithub's
                # add_to_labels sends a bare list, which the API description does not allow
                lambda: self._client.requester.requestJsonAndCheck(
                    "POST",
                    f"/repos/{self.slug}/issues/{number}/labels",
                    input={"labels": list(labels)},
                ),
            )

    def _pull(self, number: int) -> Any:
        if number not in self._pulls:
            self._pulls[number] = self._repository().get_pull(number)
        return self._pulls[number]


def _info(pull: Any) -> PullInfo:
    return PullInfo(
        number=int(pull.number),
        state=str(pull.state),
        merged=pull.merged_at is not None,
        title=str(pull.title or ""),
        body=str(pull.body or ""),
        url=str(pull.html_url or ""),
        head=str(pull.head.ref),
    )


def _describe(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or data.get("title") or exc.data or "").strip()
    details = []
    for item in data.get("errors") or data.get("validation") or []:
        if isinstance(item, dict):
            details.append(str(item.get("message") or item.get("code") or item))
    text = f"HTTP {exc.status}" + (f": {message}" if message else "")
    return text + (f" ({'; '.join(details)})" if details else "")
