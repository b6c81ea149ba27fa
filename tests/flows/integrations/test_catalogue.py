"""The integration node types are registered once each and describe their credentials."""

from __future__ import annotations

import json

from prefect_aws.credentials import AwsCredentials
from prefect_slack.credentials import SlackCredentials

from blocks.catalog import block_class, type_slugs
from blocks.types import (
    DatabaseUrl,
    GitHubToken,
    JiraCredentials,
    LlmProvider,
    OAuth2Connection,
    PagerDutyKey,
    SendGridApiKey,
    SmtpServer,
    TwilioCredentials,
)
from tests.examples import EXAMPLES_DIR
from translator.nodetypes import load_registry

#: Each integration node type and the Block class(es) of the credential it takes (an OAuth 2.0
#: connection stands in for a token where the provider signs in with OAuth).
INTEGRATIONS = {
    "slack.send_message": (SlackCredentials, OAuth2Connection),
    "slack.send_dm": (SlackCredentials, OAuth2Connection),
    "slack.add_reaction": (SlackCredentials, OAuth2Connection),
    "slack.update_message": (SlackCredentials, OAuth2Connection),
    "email.send": SmtpServer,
    "email.send_template": SmtpServer,
    "github.create_issue": (GitHubToken, OAuth2Connection),
    "github.add_label": (GitHubToken, OAuth2Connection),
    "github.create_comment": (GitHubToken, OAuth2Connection),
    "jira.create_issue": (JiraCredentials, OAuth2Connection),
    "jira.transition_issue": (JiraCredentials, OAuth2Connection),
    "jira.add_comment": (JiraCredentials, OAuth2Connection),
    "jira.search": (JiraCredentials, OAuth2Connection),
    "pagerduty.create_incident": PagerDutyKey,
    "pagerduty.acknowledge": PagerDutyKey,
    "pagerduty.resolve": PagerDutyKey,
    "aws.s3.get_object": AwsCredentials,
    "aws.s3.put_object": AwsCredentials,
    "aws.lambda.invoke": AwsCredentials,
    "aws.sqs.send_message": AwsCredentials,
    "aws.sns.publish": AwsCredentials,
    "aws.textract.detect_text": AwsCredentials,
    "aws.ses.send_email": AwsCredentials,
    "aws.sns.send_sms": AwsCredentials,
    "sendgrid.send_email": SendGridApiKey,
    "twilio.send_sms": TwilioCredentials,
    "llm.chat": LlmProvider,
    "llm.extract": LlmProvider,
    "db.query": DatabaseUrl,
    "db.execute": DatabaseUrl,
    "code.javascript": None,
}


def test_each_integration_registered_once_with_its_credential_type() -> None:
    registry = load_registry()  # raises if a slug/version is registered twice
    known = set(type_slugs())
    for slug, credential in INTEGRATIONS.items():
        assert registry.versions(slug) == [1], slug
        node_type = registry.get(slug)
        assert node_type is not None
        classes = credential if isinstance(credential, tuple) else (credential,) if credential else ()
        assert node_type.credential_types == tuple(c.get_block_type_slug() for c in classes), slug
        assert set(node_type.credential_types) <= known, f"{slug}: unknown credential type"
        # The type a node names is the Block class Prefect looks up by that slug.
        assert [block_class(t) for t in node_type.credential_types] == list(classes), slug
        json.dumps(node_type.describe())


def test_deployment_notifier_slack_node_still_fits() -> None:
    graph = json.loads((EXAMPLES_DIR / "deployment-notifier.json").read_text())
    node = next(n for n in graph["nodes"] if n["type"] == "slack.send_message")
    config = load_registry().get("slack.send_message").Config.model_validate(node["config"])
    assert config.channel == "#deployments"
