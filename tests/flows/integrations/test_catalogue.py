"""The integration node types are registered once each and describe their credentials."""

from __future__ import annotations

import json

from flows.integrations import credentials as creds
from translator.nodetypes import load_registry
from tests.examples import EXAMPLES_DIR

INTEGRATIONS = {
    "slack.send_message": creds.SLACK, "slack.send_dm": creds.SLACK, "slack.add_reaction": creds.SLACK,
    "slack.update_message": creds.SLACK,
    "email.send": creds.SMTP, "email.send_template": creds.SMTP,
    "github.create_issue": creds.GITHUB, "github.add_label": creds.GITHUB, "github.create_comment": creds.GITHUB,
    "jira.create_issue": creds.JIRA, "jira.transition_issue": creds.JIRA, "jira.add_comment": creds.JIRA,
    "jira.search": creds.JIRA,
    "pagerduty.create_incident": creds.PAGERDUTY, "pagerduty.acknowledge": creds.PAGERDUTY,
    "pagerduty.resolve": creds.PAGERDUTY,
    "aws.s3.get_object": creds.AWS, "aws.s3.put_object": creds.AWS, "aws.lambda.invoke": creds.AWS,
    "aws.sqs.send_message": creds.AWS, "aws.sns.publish": creds.AWS, "aws.textract.detect_text": creds.AWS,
    "llm.chat": creds.LLM, "llm.extract": creds.LLM,
    "db.query": creds.DATABASE, "db.execute": creds.DATABASE,
    "code.javascript": None,
}


def test_each_integration_registered_once_with_its_credential_type() -> None:
    from blocks.catalog import type_slugs

    registry = load_registry()  # raises if a slug/version is registered twice
    known = set(type_slugs())
    for slug, credential in INTEGRATIONS.items():
        assert registry.versions(slug) == [1], slug
        node_type = registry.get(slug)
        assert node_type is not None
        assert node_type.credential_types == ((credential,) if credential else ()), slug
        assert set(node_type.credential_types) <= known, f"{slug}: unknown credential type"
        json.dumps(node_type.describe())


def test_deployment_notifier_slack_node_still_fits() -> None:
    graph = json.loads((EXAMPLES_DIR / "deployment-notifier.json").read_text())
    node = next(n for n in graph["nodes"] if n["type"] == "slack.send_message")
    config = load_registry().get("slack.send_message").Config.model_validate(node["config"])
    assert config.channel == "#deployments"
