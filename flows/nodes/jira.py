"""Jira node types (REST API): create, transition, comment on and search issues.

The credential is a Jira Block (``base_url``, ``email``, ``api_token``): with an e-mail the
token is sent as Basic auth (Jira Cloud), without one as a Bearer personal access token (Jira
Server / Data Center). Bodies are plain text (API v2); search uses Cloud's ``/search/jql``.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from pydantic import Field

from flows.errors import IntegrationError
from flows.integrations import JsonApi
from flows.integrations import credentials as creds
from translator.nodetypes import NodeConfig, NodeContext, NodeType

_ISSUE_KEY = r"^([A-Z][A-Z0-9_]+-\d+|\d+)$|\{\{"


class _JiraConfig(NodeConfig):
    credential: str = Field(
        min_length=1, description="Name of the Jira credential or OAuth 2.0 connection (with its base_url)."
    )


class _JiraNode(NodeType):
    category = "jira"
    credential_types = ("jira-credentials", "oauth2-connection")

    async def _api(self, ctx: NodeContext, config: _JiraConfig) -> JsonApi:
        block = await creds.load(ctx, config.credential, "jira", self.credential_types)
        token = creds.required(block, "jira", config.credential, "api_token", "token")
        email = creds.field(block, "email", "username")
        base = creds.api_base(block, "jira", "")
        if not base:
            raise IntegrationError("jira", "load credential", f"credential {config.credential!r} has no 'base_url'")
        if email:
            basic = base64.b64encode(f"{email}:{token}".encode()).decode()
            auth, secrets = f"Basic {basic}", [token, basic]
        else:
            auth, secrets = f"Bearer {token}", [token]
        return JsonApi(
            "jira",
            base,
            tenant=ctx.tenant_id,
            headers={"Authorization": auth},
            secrets=secrets,
            # An OAuth connection (never basic auth) refreshes once on a 401.
            on_unauthorized=None if email else creds.bearer_refresher(ctx, config.credential, block),
        )


class JiraCreateIssue(_JiraNode):
    type = "jira.create_issue"
    version = 1
    display_name = "Create Jira issue"
    description = "Create an issue in a Jira project."
    icon = "issue"
    example = {"credential": "jira", "project": "OPS", "summary": "Alert: {{ trigger.title }}"}

    class Config(_JiraConfig):
        project: str = Field(min_length=1, description="Project key, e.g. 'OPS'.")
        issue_type: str = Field(default="Task", description="Issue type name ('Task', 'Bug', ...).")
        summary: str = Field(min_length=1, description="Issue summary (title).")
        description: str | None = Field(default=None, description="Issue description (plain text).")
        labels: list[str] = Field(default_factory=list, description="Labels to set.")
        priority: str | None = Field(default=None, description="Priority name, e.g. 'High'.")
        fields: dict[str, Any] = Field(
            default_factory=dict, description="More fields as Jira names them (custom fields: 'customfield_10010')."
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{id, key, url}`` of the new issue."""
        api = await self._api(ctx, config)
        fields: dict[str, Any] = {
            "project": {"key": config.project},
            "issuetype": {"name": config.issue_type},
            "summary": config.summary,
            **config.fields,
        }
        if config.description:
            fields["description"] = config.description
        if config.labels:
            fields["labels"] = config.labels
        if config.priority:
            fields["priority"] = {"name": config.priority}
        issue = await api.call("POST", "/rest/api/2/issue", json={"fields": fields}, operation="create issue")
        return {"id": issue["id"], "key": issue["key"], "url": f"{api.base_url}/browse/{issue['key']}"}


class JiraTransitionIssue(_JiraNode):
    type = "jira.transition_issue"
    version = 1
    display_name = "Transition Jira issue"
    description = "Move an issue through its workflow (e.g. to 'Done'), by transition name or id."
    icon = "issue"
    example = {"credential": "jira", "issue": "OPS-12", "transition": "Done"}

    class Config(_JiraConfig):
        issue: str = Field(pattern=_ISSUE_KEY, description="Issue key ('OPS-12') or id.")
        transition: str = Field(min_length=1, description="Transition name ('Done') or id ('31').")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{issue, transition_id, transition}``."""
        api = await self._api(ctx, config)
        path = f"/rest/api/2/issue/{quote(config.issue, safe='')}/transitions"
        listed = await api.call("GET", path, operation="list transitions")
        available = listed.get("transitions", [])
        wanted = config.transition.strip().lower()
        match = next(
            (t for t in available if str(t.get("id")) == wanted or str(t.get("name", "")).lower() == wanted), None
        )
        if match is None:
            names = ", ".join(f"{t.get('name')} ({t.get('id')})" for t in available) or "none"
            raise IntegrationError(
                "jira",
                "transition issue",
                f"issue {config.issue} has no transition {config.transition!r}; available: {names}",
            )
        await api.call("POST", path, json={"transition": {"id": str(match["id"])}}, operation="transition issue")
        return {"issue": config.issue, "transition_id": str(match["id"]), "transition": match.get("name")}


class JiraAddComment(_JiraNode):
    type = "jira.add_comment"
    version = 1
    display_name = "Comment on Jira issue"
    description = "Add a comment to an issue."
    icon = "comment"
    example = {"credential": "jira", "issue": "OPS-12", "body": "Fixed in {{ trigger.version }}"}

    class Config(_JiraConfig):
        issue: str = Field(pattern=_ISSUE_KEY, description="Issue key ('OPS-12') or id.")
        body: str = Field(min_length=1, description="Comment text (plain text).")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{id, issue}``."""
        api = await self._api(ctx, config)
        comment = await api.call(
            "POST",
            f"/rest/api/2/issue/{quote(config.issue, safe='')}/comment",
            json={"body": config.body},
            operation="add comment",
        )
        return {"id": comment["id"], "issue": config.issue}


class JiraSearch(_JiraNode):
    type = "jira.search"
    version = 1
    display_name = "Search Jira issues"
    description = "Find issues with JQL."
    icon = "search"
    example = {"credential": "jira", "jql": "project = OPS AND status = Open"}

    class Config(_JiraConfig):
        jql: str = Field(min_length=1, description="JQL query, e.g. 'project = OPS AND status = Open'.")
        fields: list[str] = Field(
            default_factory=lambda: ["summary", "status", "assignee"], description="Fields to return per issue."
        )
        max_results: int = Field(default=50, ge=1, le=1000, description="Most issues returned.")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{issues: [{id, key, fields}], count}``."""
        api = await self._api(ctx, config)
        found = await api.call(
            "POST",
            "/rest/api/3/search/jql",
            json={"jql": config.jql, "fields": config.fields, "maxResults": config.max_results},
            operation="search",
        )
        issues = [
            {"id": i.get("id"), "key": i.get("key"), "fields": i.get("fields", {})} for i in found.get("issues", [])
        ][: config.max_results]
        return {"issues": issues, "count": len(issues)}
