"""Loopback stand-ins for the providers: each checks the requests it gets like the real API."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl

from tests.peers import HttpPeer, PeerResponse, RecordedRequest


def request_fields(req: RecordedRequest) -> dict[str, Any]:
    """Query string, form and JSON body of a request, merged (Slack accepts all three)."""
    fields: dict[str, Any] = dict(parse_qsl(req.path.partition("?")[2]))
    ctype = req.headers.get("content-type", "")
    if req.body and "json" in ctype:
        fields.update(json.loads(req.body))
    elif req.body:
        fields.update(parse_qsl(req.body.decode()))
    return fields


class SlackPeer(HttpPeer):
    """A Slack-Web-API-compatible server: ``chat.postMessage``, ``chat.update``,
    ``reactions.add``, ``conversations.open``, ``users.lookupByEmail``; bearer token checked,
    unknown channels answer ``channel_not_found`` like Slack does (HTTP 200, ``ok: false``)."""

    TOKEN = "xoxb-test-0123456789-secret"
    CHANNELS = {"#deployments": "C0DEPLOY", "C0DEPLOY": "C0DEPLOY", "D0DM": "D0DM"}
    USERS = {"ana@example.com": "U0ANA"}

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.reactions: list[dict[str, Any]] = []
        for method in ("chat.postMessage", "chat.update", "reactions.add", "conversations.open", "users.lookupByEmail"):
            self.route("*", f"/api/{method}", lambda req, m=method: self._answer(m, req))

    def _answer(self, method: str, req: RecordedRequest) -> PeerResponse:
        if req.headers.get("authorization") != f"Bearer {self.TOKEN}":
            return PeerResponse(200, {"ok": False, "error": "invalid_auth"})
        f = request_fields(req)
        if method == "users.lookupByEmail":
            user = self.USERS.get(f.get("email", ""))
            return PeerResponse(
                200, {"ok": True, "user": {"id": user}} if user else {"ok": False, "error": "users_not_found"}
            )
        if method == "conversations.open":
            return PeerResponse(200, {"ok": True, "channel": {"id": "D0DM"}})
        channel = self.CHANNELS.get(f.get("channel", ""))
        if channel is None:
            return PeerResponse(200, {"ok": False, "error": "channel_not_found"})
        if method == "reactions.add":
            self.reactions.append(f)
            return PeerResponse(200, {"ok": True})
        if not f.get("text") and not f.get("blocks"):
            return PeerResponse(200, {"ok": False, "error": "no_text"})
        ts = f.get("ts") or f"1700000000.{len(self.messages):06d}"
        message = {"text": f.get("text"), "blocks": f.get("blocks"), "ts": ts}
        self.messages.append({"method": method, "channel": channel, **f})
        return PeerResponse(200, {"ok": True, "channel": channel, "ts": ts, "message": message})


class FailingPeer(HttpPeer):
    """Answers every request with ``status`` (for breaker and error tests)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__()
        self._status, self._body = status, body

    def _dispatch(self, request: RecordedRequest) -> PeerResponse:
        return PeerResponse(self._status, self._body)


def _bad(status: int, body: Any) -> PeerResponse:
    return PeerResponse(status, body)


class GitHubPeer(HttpPeer):
    """GitHub REST v3 for repository ``acme/api``: issues, labels, comments; checks the token,
    the API version header and required fields the way GitHub answers (401, 404, 422)."""

    TOKEN = "ghp_testtoken0123456789abcdef"

    def __init__(self) -> None:
        super().__init__()
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: list[dict[str, Any]] = []
        self.route("*", "/repos/acme/api/issues", self._create_issue)
        for number in (1, 2, 3):
            self.route("POST", f"/repos/acme/api/issues/{number}/labels", lambda r, n=number: self._labels(n, r))
            self.route("POST", f"/repos/acme/api/issues/{number}/comments", lambda r, n=number: self._comment(n, r))

    def _checked(self, req: RecordedRequest) -> PeerResponse | None:
        if req.headers.get("authorization") != f"Bearer {self.TOKEN}":
            return _bad(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        if req.headers.get("x-github-api-version") != "2022-11-28":
            return _bad(400, {"message": "missing X-GitHub-Api-Version"})
        return None

    def _create_issue(self, req: RecordedRequest) -> PeerResponse:
        if (bad := self._checked(req)) is not None:
            return bad
        body = req.json()
        if not body.get("title"):
            return _bad(422, {"message": "Validation Failed", "errors": [{"field": "title", "code": "missing_field"}]})
        number = len(self.issues) + 1
        self.issues[number] = {**body, "labels": [{"name": n} for n in body.get("labels", [])]}
        return PeerResponse(
            201,
            {
                "number": number,
                "id": 1000 + number,
                "state": "open",
                "html_url": f"https://github.test/acme/api/issues/{number}",
            },
        )

    def _labels(self, number: int, req: RecordedRequest) -> PeerResponse:
        if (bad := self._checked(req)) is not None:
            return bad
        if number not in self.issues:
            return _bad(404, {"message": "Not Found"})
        issue = self.issues[number]
        issue["labels"] += [{"name": n} for n in req.json()["labels"]]
        return PeerResponse(200, issue["labels"])

    def _comment(self, number: int, req: RecordedRequest) -> PeerResponse:
        if (bad := self._checked(req)) is not None:
            return bad
        self.comments.append({"issue": number, **req.json()})
        return PeerResponse(201, {"id": 5000 + len(self.comments), "html_url": "https://github.test/c"})


class JiraPeer(HttpPeer):
    """Jira REST for project ``OPS``: create, transitions, comment, search/jql; Basic auth checked."""

    EMAIL, TOKEN = "bot@example.com", "jira-api-token-secret-42"
    TRANSITIONS = [{"id": "11", "name": "In Progress"}, {"id": "31", "name": "Done"}]

    def __init__(self) -> None:
        super().__init__()

        self.auth = "Basic " + base64.b64encode(f"{self.EMAIL}:{self.TOKEN}".encode()).decode()
        self.created: list[dict[str, Any]] = []
        self.transitioned: list[str] = []
        self.comments: list[str] = []
        self.searches: list[dict[str, Any]] = []
        self.route("POST", "/rest/api/2/issue", self._create)
        self.route("*", "/rest/api/2/issue/OPS-1/transitions", self._transitions)
        self.route("POST", "/rest/api/2/issue/OPS-1/comment", self._comment)
        self.route("POST", "/rest/api/3/search/jql", self._search)

    def _denied(self, req: RecordedRequest) -> PeerResponse | None:
        if req.headers.get("authorization") != self.auth:
            return _bad(401, {"errorMessages": ["You are not authenticated."], "errors": {}})
        return None

    def _create(self, req: RecordedRequest) -> PeerResponse:
        if (bad := self._denied(req)) is not None:
            return bad
        fields = req.json()["fields"]
        if fields.get("project", {}).get("key") != "OPS":
            return _bad(400, {"errorMessages": [], "errors": {"project": "valid project is required"}})
        self.created.append(fields)
        return PeerResponse(201, {"id": "10001", "key": f"OPS-{len(self.created)}"})

    def _transitions(self, req: RecordedRequest) -> PeerResponse:
        if (bad := self._denied(req)) is not None:
            return bad
        if req.method == "GET":
            return PeerResponse(200, {"transitions": self.TRANSITIONS})
        self.transitioned.append(req.json()["transition"]["id"])
        return PeerResponse(204, b"")

    def _comment(self, req: RecordedRequest) -> PeerResponse:
        if (bad := self._denied(req)) is not None:
            return bad
        self.comments.append(req.json()["body"])
        return PeerResponse(201, {"id": "20001"})

    def _search(self, req: RecordedRequest) -> PeerResponse:
        if (bad := self._denied(req)) is not None:
            return bad
        self.searches.append(req.json())
        issues = [
            {"id": "10001", "key": "OPS-1", "fields": {"summary": "disk full"}},
            {"id": "10002", "key": "OPS-2", "fields": {"summary": "cert expiring"}},
        ]
        return PeerResponse(200, {"issues": issues[: req.json()["maxResults"]], "isLast": True})


class PagerDutyPeer(HttpPeer):
    """PagerDuty Events API v2 (``/v2/enqueue``): validates the event like PagerDuty does."""

    ROUTING_KEY = "R0UT1NGKEY0123456789abcdefabcdef"

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.route("POST", "/v2/enqueue", self._enqueue)

    def _enqueue(self, req: RecordedRequest) -> PeerResponse:
        event = req.json()
        errors = []
        if event.get("routing_key") != self.ROUTING_KEY:
            errors.append("'routing_key' is invalid")
        action = event.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        if action == "trigger":
            payload = event.get("payload") or {}
            errors += [f"'payload.{k}' is missing" for k in ("summary", "source", "severity") if not payload.get(k)]
        elif not event.get("dedup_key"):
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if errors:
            return _bad(400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors})
        self.events.append(event)
        return PeerResponse(
            202,
            {
                "status": "success",
                "message": "Event processed",
                "dedup_key": event.get("dedup_key") or f"dk-{len(self.events)}",
            },
        )


class OpenAIPeer(HttpPeer):
    """An OpenAI-compatible ``/v1/chat/completions`` that answers from a script.

    ``peer.answers`` is a queue of reply texts, assistant messages (a dict, e.g. with
    ``tool_calls``) or ``(status, error body)`` pairs; each request takes the next one. The bearer key is checked; requests are kept in ``chats``.
    """

    KEY = "sk-test-local-0123456789abcdef"

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Any] = []
        self.chats: list[dict[str, Any]] = []
        self.route("POST", "/v1/chat/completions", self._complete)

    def _complete(self, req: RecordedRequest) -> PeerResponse:
        if req.headers.get("authorization") != f"Bearer {self.KEY}":
            return _bad(
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
        body = req.json()
        self.chats.append(body)
        if not self.answers:
            return _bad(500, {"error": {"message": "no scripted answer left", "type": "server_error"}})
        answer = self.answers.pop(0)
        if isinstance(answer, tuple):
            return _bad(*answer)
        prompt = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
        message = answer if isinstance(answer, dict) else {"role": "assistant", "content": answer}
        completion = len(json.dumps(message).split()) if isinstance(answer, dict) else len(answer.split())
        return PeerResponse(
            200,
            {
                "id": f"chatcmpl-{len(self.chats)}",
                "object": "chat.completion",
                "created": 1700000000,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            },
        )


class SendGridPeer(HttpPeer):
    """SendGrid's v3 ``/v3/mail/send``: checks the bearer key and the message the way SendGrid
    answers (401, 400 ``{"errors": [{message, field}]}``), accepts with 202, an empty body and the
    message id in ``X-Message-Id``. Accepted messages are kept in ``mails``."""

    KEY = "SG.test-key-0123456789.abcdefghijklmnop"
    TEMPLATES = {"d-0123456789abcdef0123456789abcdef"}

    def __init__(self) -> None:
        super().__init__()
        self.mails: list[dict[str, Any]] = []
        self.route("POST", "/v3/mail/send", self._send)

    def _send(self, req: RecordedRequest) -> PeerResponse:
        if req.headers.get("authorization") != f"Bearer {self.KEY}":
            return _bad(
                401,
                {
                    "errors": [
                        {
                            "message": "The provided authorization grant is invalid, expired, or revoked",
                            "field": None,
                            "help": None,
                        }
                    ]
                },
            )
        if "application/json" not in req.headers.get("content-type", ""):
            return _bad(415, {"errors": [{"message": "Content-Type should be application/json.", "field": None}]})
        mail = req.json()
        errors = []
        if not (mail.get("from") or {}).get("email"):
            errors.append({"message": "The from object must be provided for every email send.", "field": "from"})
        if not mail.get("personalizations") or not mail["personalizations"][0].get("to"):
            errors.append({"message": "The to array is required for all personalization objects", "field": "to"})
        if mail.get("template_id") and mail["template_id"] not in self.TEMPLATES:
            errors.append({"message": "The template_id must be a valid template ID.", "field": "template_id"})
        if not mail.get("template_id"):
            if not mail.get("subject"):
                errors.append({"message": "The subject is required.", "field": "subject"})
            if not mail.get("content"):
                errors.append(
                    {"message": "The content value must be a string at least one character", "field": "content"}
                )
        if errors:
            return _bad(400, {"errors": errors})
        self.mails.append(mail)
        return PeerResponse(202, b"", headers={"X-Message-Id": f"sg-msg-{len(self.mails)}"})


class TwilioPeer(HttpPeer):
    """Twilio's ``POST /2010-04-01/Accounts/{sid}/Messages.json`` for one account: form body,
    Basic auth with the auth token or an API key; errors as Twilio sends them
    (``{"code", "message", "more_info", "status"}``). Sent messages are kept in ``messages``."""

    ACCOUNT = "AC" + "0123456789abcdef" * 2
    TOKEN = "twilio-auth-token-0123456789abcd"
    KEY_SID = "SK" + "fedcba9876543210" * 2
    KEY_SECRET = "twilio-key-secret-do-not-log-42"

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, str]] = []
        self.route("POST", f"/2010-04-01/Accounts/{self.ACCOUNT}/Messages.json", self._create)

    @staticmethod
    def _error(status: int, code: int, message: str) -> PeerResponse:
        more = f"https://www.twilio.com/docs/errors/{code}"
        return _bad(status, {"code": code, "message": message, "more_info": more, "status": status})

    def _create(self, req: RecordedRequest) -> PeerResponse:
        logins = {
            base64.b64encode(f"{self.ACCOUNT}:{self.TOKEN}".encode()).decode(),
            base64.b64encode(f"{self.KEY_SID}:{self.KEY_SECRET}".encode()).decode(),
        }
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Basic ") or auth.removeprefix("Basic ") not in logins:
            return self._error(401, 20003, "Authenticate")
        if req.headers.get("content-type") != "application/x-www-form-urlencoded":
            return self._error(400, 20001, "Unsupported content type")
        form = dict(parse_qsl(req.body.decode()))
        if form.get("To") == "+15005550009":  # Twilio's magic test number: cannot receive SMS
            return self._error(400, 21614, "'To' number is not a valid mobile number")
        if form.get("To") == "+15005550429":  # stands for Twilio's rate limit
            return self._error(429, 20429, "Too Many Requests")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return self._error(400, 21603, "A 'From' phone number is required.")
        self.messages.append(form)
        sid = f"SM{len(self.messages):032x}"
        return PeerResponse(
            201,
            {
                "sid": sid,
                "account_sid": self.ACCOUNT,
                "to": form["To"],
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form.get("Body"),
                "status": "accepted" if form.get("MessagingServiceSid") else "queued",
                "num_segments": "1",
                "error_code": None,
                "error_message": None,
            },
        )
