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
    PagerDutyKey,
    SendGridApiKey,
    SmtpServer,
    TwilioCredentials,
)
from tests.examples import EXAMPLES_DIR
from translator.nodetypes import load_registry

#: Each integration node type and the Block class of the credential it takes.
INTEGRATIONS = {
    "slack.send_message": SlackCredentials,
    "slack.send_dm": SlackCredentials,
    "slack.add_reaction": SlackCredentials,
    "slack.update_message": SlackCredentials,
    "email.send": SmtpServer,
    "email.send_template": SmtpServer,
    "github.create_issue": GitHubToken,
    "github.add_label": GitHubToken,
    "github.create_comment": GitHubToken,
    "jira.create_issue": JiraCredentials,
    "jira.transition_issue": JiraCredentials,
    "jira.add_comment": JiraCredentials,
    "jira.search": JiraCredentials,
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
        assert node_type.credential_types == ((credential.get_block_type_slug(),) if credential else ()), slug
        assert set(node_type.credential_types) <= known, f"{slug}: unknown credential type"
        # The type a node names is the Block class Prefect looks up by that slug.
        assert all(block_class(t) is credential for t in node_type.credential_types), slug
        json.dumps(node_type.describe())


def test_deployment_notifier_slack_node_still_fits() -> None:
    graph = json.loads((EXAMPLES_DIR / "deployment-notifier.json").read_text())
    node = next(n for n in graph["nodes"] if n["type"] == "slack.send_message")
    config = load_registry().get("slack.send_message").Config.model_validate(node["config"])
    assert config.channel == "#deployments"
