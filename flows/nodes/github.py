"""GitHub node types (REST API v3): open an issue, label it, comment on it.

The credential is a GitHub token Block (``token``, optional ``base_url`` for GitHub Enterprise,
e.g. ``https://github.example.com/api/v3``); else ``GORAX_GITHUB_API_URL``, else api.github.com.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import Field

from flows.integrations import JsonApi
from flows.integrations import credentials as creds
from translator.nodetypes import NodeConfig, NodeContext, NodeType

_GITHUB_API = "https://api.github.com"
_REPOSITORY = r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+$|\{\{"


class _GitHubConfig(NodeConfig):
    credential: str = Field(min_length=1, description="Name of the GitHub token credential or GitHub OAuth connection.")
    repository: str = Field(pattern=_REPOSITORY, description="Repository as 'owner/name'.")


class _GitHubNode(NodeType):
    category = "github"
    credential_types = ("github-token", "oauth2-connection")

    async def _api(self, ctx: NodeContext, config: _GitHubConfig) -> tuple[JsonApi, str]:
        block = await creds.load(ctx, config.credential, "github", self.credential_types)
        token = creds.required(block, "github", config.credential, "token", "api_token")
        api = JsonApi(
            "github",
            creds.api_base(block, "github", _GITHUB_API),
            tenant=ctx.tenant_id,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            secrets=[token],
            on_unauthorized=creds.bearer_refresher(ctx, config.credential, block),
        )
        owner, _, name = config.repository.partition("/")
        return api, f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


class GitHubCreateIssue(_GitHubNode):
    type = "github.create_issue"
    version = 1
    display_name = "Create GitHub issue"
    description = "Open an issue in a repository."
    icon = "issue"
    example = {
        "credential": "github",
        "repository": "acme/api",
        "title": "Failed check: {{ trigger.check }}",
        "labels": ["bug"],
    }

    class Config(_GitHubConfig):
        title: str = Field(min_length=1, description="Issue title.")
        body: str | None = Field(default=None, description="Issue body (Markdown).")
        labels: list[str] = Field(default_factory=list, description="Labels to set.")
        assignees: list[str] = Field(default_factory=list, description="Logins to assign.")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{number, id, url, state}`` of the new issue."""
        api, repo = await self._api(ctx, config)
        payload: dict[str, Any] = {"title": config.title}
        for key in ("body", "labels", "assignees"):
            if getattr(config, key):
                payload[key] = getattr(config, key)
        issue = await api.call("POST", f"{repo}/issues", json=payload, operation="create issue")
        return {"number": issue["number"], "id": issue["id"], "url": issue.get("html_url"), "state": issue.get("state")}


class GitHubAddLabel(_GitHubNode):
    type = "github.add_label"
    version = 1
    display_name = "Add GitHub labels"
    description = "Add labels to an issue or pull request."
    icon = "tag"
    example = {"credential": "github", "repository": "acme/api", "issue_number": 42, "labels": ["triage"]}

    class Config(_GitHubConfig):
        issue_number: int = Field(ge=1, description="Issue or pull request number.")
        labels: list[str] = Field(min_length=1, description="Labels to add.")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{issue_number, labels}`` with every label the issue now has."""
        api, repo = await self._api(ctx, config)
        labels = await api.call(
            "POST",
            f"{repo}/issues/{config.issue_number}/labels",
            json={"labels": config.labels},
            operation="add labels",
        )
        return {"issue_number": config.issue_number, "labels": [label["name"] for label in labels]}


class GitHubCreateComment(_GitHubNode):
    type = "github.create_comment"
    version = 1
    display_name = "Comment on GitHub issue"
    description = "Comment on an issue or pull request."
    icon = "comment"
    example = {
        "credential": "github",
        "repository": "acme/api",
        "issue_number": 42,
        "body": "Deployed in {{ trigger.version }}",
    }

    class Config(_GitHubConfig):
        issue_number: int = Field(ge=1, description="Issue or pull request number.")
        body: str = Field(min_length=1, description="Comment text (Markdown).")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{id, url}`` of the comment."""
        api, repo = await self._api(ctx, config)
        comment = await api.call(
            "POST",
            f"{repo}/issues/{config.issue_number}/comments",
            json={"body": config.body},
            operation="create comment",
        )
        return {"id": comment["id"], "url": comment.get("html_url")}
