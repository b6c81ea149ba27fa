"""The n8n importer on n8n's own workflow files: nodes, handles, expressions, placeholders.

Each real file (tests/fixtures/n8n, with its source path and licence) is imported and the
result checked node by node; every result must validate with the translator. Node types no
real file here uses (e-mail, GitHub, Jira, PagerDuty, Postgres, LLM chains) are checked on
small workflows written in n8n's export format below.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from flows.deploy_steps import DeployStepError, graph_deployment
from flows.importers.n8n import MARK, N8nImportError, import_n8n
from flows.importers.n8n_expressions import Scope, Untranslatable, template, to_cel
from flows.nodes.code import CodeJavaScript
from flows.nodes.condition import Condition
from flows.nodes.delay import Delay
from flows.nodes.http_request import HttpRequest
from flows.nodes.imported import ImportPlaceholder, ImportPlaceholderTrigger
from flows.nodes.loop import Loop
from flows.nodes.merge import Merge
from flows.nodes.slack import SlackSendMessage
from flows.nodes.subworkflow import Subworkflow
from flows.nodes.switch import Switch
from flows.nodes.transform import Transform
from flows.nodes.trigger_manual import ManualTrigger
from flows.nodes.trigger_schedule import ScheduleTrigger
from flows.nodes.trigger_webhook import WebhookTrigger
from tests.flows.importers.conftest import N8N_FIXTURES, n8n_file
from translator import compile_graph, validate_graph

ALL_FILES = sorted(p.name for p in N8N_FIXTURES.glob("*.json"))


def nodes_of(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in graph["nodes"]}


def edges_of(graph: dict[str, Any]) -> set[tuple[str, str | None, str]]:
    return {(e["source"], e.get("sourceHandle"), e["target"]) for e in graph["edges"]}


def test_there_are_real_n8n_files_with_their_licence() -> None:
    assert len(ALL_FILES) >= 5
    sources = (N8N_FIXTURES / "SOURCES.md").read_text()
    for name in ALL_FILES:
        assert f"`{name}`" in sources, f"{name} has no source line in SOURCES.md"
    assert "Sustainable Use License" in (N8N_FIXTURES / "LICENSE.md").read_text()


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_real_file_imports_to_a_valid_graph(name: str) -> None:
    document = n8n_file(name)
    result = import_n8n(document)
    assert validate_graph(result.graph) == []
    report = result.report.to_dict()
    # nothing is lost: each n8n node is mapped, a placeholder, or listed as skipped
    counted = report["summary"]["mapped"] + report["summary"]["placeholders"] + report["summary"]["skipped"]
    assert counted == len(document["nodes"])
    by_name = {n["name"]: n for n in result.graph["nodes"]}
    for original in document["nodes"]:
        if original["type"].endswith("stickyNote"):
            continue
        node = by_name[original["name"]]  # the n8n name is the label
        assert node["position"] == {"x": original["position"][0], "y": original["position"][1]}


def test_loop_over_items_becomes_a_loop_with_its_body() -> None:
    result = import_n8n(n8n_file("Workflow_loop.json"))
    nodes = nodes_of(result.graph)
    assert nodes["loop_over_items"]["type"] == Loop.type
    assert nodes["loop_over_items"]["config"] == {"mode": "foreach", "items": "{{ steps.code }}"}
    # the Wait on the loop output is the body; the edge back to the loop is the next iteration
    assert nodes["wait"]["parentId"] == "loop_over_items"
    assert nodes["wait"]["type"] == Delay.type and nodes["wait"]["config"] == {"seconds": 2.0}
    # the "done" output continues after the loop
    assert edges_of(result.graph) == {
        ("when_clicking_execute_workflow", None, "code"),
        ("code", None, "loop_over_items"),
        ("loop_over_items", None, "code1"),
    }
    assert nodes["code"]["type"] == CodeJavaScript.type
    assert "return [{data:1},{data:2},{data:3}]" in nodes["code"]["config"]["code"]
    plan = compile_graph(result.graph)
    assert list(plan.bodies["loop_over_items"].nodes) == ["wait"]


def test_if_condition_is_translated_to_cel() -> None:
    result = import_n8n(n8n_file("GHC-7313_If_loose_validation.json"))
    node = nodes_of(result.graph)["if"]
    assert node["type"] == Condition.type
    # $json after a Code node is its first item, as in n8n for one item
    assert node["config"]["expression"] == "has(steps.code[0].message)"
    assert result.report.placeholders == []


def test_switch_rules_become_cases() -> None:
    result = import_n8n(n8n_file("GHC-7313_Switch_loose_validation.json"))
    node = nodes_of(result.graph)["switch"]
    assert node["type"] == Switch.type
    assert node["config"] == {"cases": {"output_0": "has(steps.code[0].message)"}}


def test_merge_joins_both_inputs() -> None:
    result = import_n8n(n8n_file("workflow.append.json"))
    nodes = nodes_of(result.graph)
    assert nodes["merge"]["type"] == Merge.type and nodes["merge"]["config"] == {"mode": "all"}
    assert {("code", None, "merge"), ("code1", None, "merge")} <= edges_of(result.graph)
    # the trigger's ID comes from n8n's name, sanitised
    assert nodes["when_clicking_execute_workflow"]["name"] == 'When clicking "Execute Workflow"'


def test_http_request_with_query() -> None:
    result = import_n8n(n8n_file("Simple_workflow_with_http_node.json"))
    node = nodes_of(result.graph)["http_request"]
    assert node["type"] == HttpRequest.type
    assert node["config"] == {"method": "GET", "url": "http://mock-api.com/data", "query": {"test": "1"}}
    assert nodes_of(result.graph)["when_clicking_execute_workflow"]["type"] == ManualTrigger.type


def test_webhook_wait_set() -> None:
    result = import_n8n(n8n_file("Webhook_wait_set.json"))
    nodes = nodes_of(result.graph)
    assert nodes["webhook"]["type"] == WebhookTrigger.type
    assert nodes["webhook"]["config"] == {"methods": ["GET"], "signature": {"scheme": "none"}}
    assert nodes["wait"]["config"] == {"seconds": 2.0}
    # Set v1 without values passes its items on; the Wait passed the webhook's items through
    assert nodes["set"]["type"] == Transform.type and nodes["set"]["config"] == {"value": "{{ trigger }}"}
    notes = " ".join(n["message"] for n in result.report.notes)
    assert "23fc3930-b8f9-41d9-89db-b647291a2201" in notes


def test_two_schedule_triggers_and_an_untranslated_expression() -> None:
    result = import_n8n(n8n_file("Two_schedule_triggers.json"))
    nodes = nodes_of(result.graph)
    assert nodes["trigger_a"]["type"] == ScheduleTrigger.type
    assert nodes["trigger_a"]["config"] == {"cron": "0 0 * * *"}  # n8n's default: every day at midnight
    value = nodes["edit_fields"]["config"]["value"]["prevNode"]
    assert value.startswith(MARK) and "$prevNode.name" in value and "{{" not in value
    assert result.report.expressions == [
        {
            "node_id": "edit_fields",
            "path": "config.value.prevNode",
            "expression": "={{ $prevNode.name }}",
            "reason": "the n8n variable $prevNode",
        }
    ]


def test_slack_credential_is_a_named_placeholder_in_the_report() -> None:
    result = import_n8n(n8n_file("slack_message_post.workflow.json"))
    slack = nodes_of(result.graph)["slack"]
    assert slack["type"] == SlackSendMessage.type
    assert slack["config"] == {"credential": "slack_account_2", "channel": "C08514ZPKB8", "text": "test message"}
    assert result.report.credentials == [
        {
            "name": "slack_account_2",
            "type": "slack-credentials",
            "n8n_type": "slackApi",
            "n8n_name": "Slack account 2",
            "nodes": ["slack"],
        }
    ]
    text = "\n".join(result.report.lines())
    assert "needs credential 'slack_account_2' of type slack-credentials" in text
    # the No-Op passes Slack's output on
    assert nodes_of(result.graph)["no_operation_do_nothing"]["config"] == {"value": "{{ steps.slack }}"}


def test_unknown_nodes_become_placeholders_with_the_original_json() -> None:
    document = n8n_file("AwsS3.file.upload.V2.workflow.json")
    result = import_n8n(document)
    nodes = nodes_of(result.graph)
    placeholder = nodes["move_binary_data"]
    assert placeholder["type"] == ImportPlaceholder.type
    original = next(n for n in document["nodes"] if n["name"] == "Move Binary Data")
    assert placeholder["config"]["original"] == original
    assert placeholder["config"]["original_type"] == "n8n-nodes-base.moveBinaryData"
    reasons = {p["node_id"]: p["reason"] for p in result.report.placeholders}
    assert set(reasons) == {"move_binary_data", "code"}
    assert nodes["aws_s3"]["type"] == "aws.s3.put_object"
    assert nodes["aws_s3"]["config"]["bucket"] == "buc.ket" and nodes["aws_s3"]["config"]["key"] == "binary.json"
    # valid as a draft, but the plan says it cannot be published, naming node and n8n type
    blockers = compile_graph(result.graph).publish_blockers()
    assert {b.node_id for b in blockers} == {"move_binary_data", "code"}
    message = next(b.message for b in blockers if b.node_id == "move_binary_data")
    assert "n8n-nodes-base.moveBinaryData" in message and blockers[0].code == "not_publishable"


def test_execute_workflow_with_inline_json_becomes_a_subworkflow_graph() -> None:
    result = import_n8n(n8n_file("Subworkflow-debugging-execute-workflow.json"))
    nodes = nodes_of(result.graph)
    sub = nodes["execute_workflow_with_param"]
    assert sub["type"] == Subworkflow.type and sub["config"]["wait"] is True
    inner = sub["config"]["graph"]
    assert validate_graph(inner) == []
    inner_nodes = nodes_of(inner)
    assert inner_nodes["execute_workflow_trigger"]["type"] == ManualTrigger.type
    # a template mixing text and two expressions; $json after the trigger is the sub-run's input
    assert inner_nodes["edit_fields"]["config"] == {
        "value": {"hello": "world {{ trigger.firstname }} {{ trigger.lastname }}"}
    }
    assert nodes["edit_fields2"]["config"]["value"] == {
        "uid": "{{ steps.execute_workflow_with_param.uid }}",
        "email": "{{ steps.execute_workflow_with_param.email }}",
    }
    # two inputs: $json is ambiguous there, so no input is guessed
    assert "input" not in nodes["execute_workflow_with_param2"]["config"]
    assert [s["n8n_type"] for s in result.report.skipped] == ["n8n-nodes-base.stickyNote"] * 4
    assert {p["n8n_type"] for p in result.report.placeholders} == {"n8n-nodes-base.debugHelper"}


# -- expressions ---------------------------------------------------------------------------

SCOPE = Scope(
    json_root="steps.fetch.body",
    node_root=lambda name: {"Webhook": "trigger", "Fetch": "steps.fetch.body"}.get(name),
)


@pytest.mark.parametrize(
    ("source", "cel"),
    [
        ("$json.field", "steps.fetch.body.field"),
        ("$json['a b'].c[0]", 'steps.fetch.body["a b"].c[0]'),
        ("$('Webhook').item.json.body.user", "trigger.body.user"),
        ("$('Fetch').first().json.id", "steps.fetch.body.id"),
        ('$node["Webhook"].json.query.q', "trigger.query.q"),
        ("$input.item.json.n + 1", "steps.fetch.body.n + 1"),
        ("$json.status === 'ok' && $json.n >= 3", 'steps.fetch.body.status == "ok" && steps.fetch.body.n >= 3'),
        ("$json.a !== $json.b || !$json.c", "steps.fetch.body.a != steps.fetch.body.b || !steps.fetch.body.c"),
        ("'Hi ' + $json.name.toUpperCase()", '"Hi " + steps.fetch.body.name.upperAscii()'),
        ("$json.tags.includes('x') ? 'yes' : 'no'", 'steps.fetch.body.tags.contains("x") ? "yes" : "no"'),
        ("$json.items.length", "steps.fetch.body.items.size()"),
        ("$vars.API_URL", "env.API_URL"),
        ("$execution.id", "run.id"),
        ("$workflow.name", "workflow.name"),
    ],
)
def test_expressions_translate(source: str, cel: str) -> None:
    assert to_cel(source, SCOPE) == cel


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("`${$json.a}`", "template literal"),
        ("$json.items.map(i => i.id)", ".map()"),
        ("Math.max(1, 2)", "'Math'"),
        ("$items('Fetch')", "$items"),
        ("$json?.a", "optional chaining"),
        ("$('Nowhere').item.json.a", "'Nowhere'"),
        ("$env.SECRET", "process environment"),
        ("DateTime.now()", "'DateTime'"),
    ],
)
def test_expressions_that_do_not_translate_say_why(source: str, reason: str) -> None:
    with pytest.raises(Untranslatable, match=None) as caught:
        to_cel(source, SCOPE)
    assert reason in str(caught.value)


def test_templates_mix_text_and_expressions() -> None:
    assert template("Hello {{ $json.name }}, you are {{ $json.age }}!", SCOPE) == (
        "Hello {{ steps.fetch.body.name }}, you are {{ steps.fetch.body.age }}!"
    )
    assert template("{{ $json.list }}", SCOPE) == "{{ steps.fetch.body.list }}"


# -- node types no real file above uses: workflows in n8n's export format ---------------------


def workflow(*nodes: dict[str, Any], connections: dict[str, Any] | None = None, name: str = "made") -> dict[str, Any]:
    listed = [{"parameters": {}, "typeVersion": 1, "position": [0, i * 100], **n} for i, n in enumerate(nodes)]
    if connections is None:
        connections = {
            a["name"]: {"main": [[{"node": b["name"], "type": "main", "index": 0}]]} for a, b in zip(listed, listed[1:])
        }
    return {"name": name, "nodes": listed, "connections": connections}


MANUAL = {"name": "Start", "type": "n8n-nodes-base.manualTrigger"}
WEBHOOK = {
    "name": "Webhook",
    "type": "n8n-nodes-base.webhook",
    "typeVersion": 2,
    "parameters": {"httpMethod": "POST", "path": "x"},
}


def test_if_v1_true_and_false_outputs_become_handles() -> None:
    document = workflow(
        WEBHOOK,
        {
            "name": "Big?",
            "type": "n8n-nodes-base.if",
            "parameters": {
                "conditions": {"number": [{"value1": "={{ $json.body.n }}", "operation": "larger", "value2": 10}]}
            },
        },
        {"name": "Yes", "type": "n8n-nodes-base.noOp"},
        {"name": "No", "type": "n8n-nodes-base.noOp"},
        connections={
            "Webhook": {"main": [[{"node": "Big?", "type": "main", "index": 0}]]},
            "Big?": {
                "main": [
                    [{"node": "Yes", "type": "main", "index": 0}],
                    [{"node": "No", "type": "main", "index": 0}],
                ]
            },
        },
    )
    result = import_n8n(document)
    assert nodes_of(result.graph)["big"]["config"] == {"expression": "(trigger.body.n) > 10"}
    assert {("big", "true", "yes"), ("big", "false", "no")} <= edges_of(result.graph)
    assert nodes_of(result.graph)["webhook"]["config"]["methods"] == ["POST"]


def test_switch_v3_outputs_and_fallback() -> None:
    rule = lambda value: {  # noqa: E731
        "conditions": {
            "conditions": [
                {
                    "leftValue": "={{ $json.body.level }}",
                    "rightValue": value,
                    "operator": {"type": "string", "operation": "equals"},
                }
            ],
            "combinator": "and",
        }
    }
    document = workflow(
        WEBHOOK,
        {
            "name": "Route",
            "type": "n8n-nodes-base.switch",
            "typeVersion": 3,
            "parameters": {
                "rules": {"values": [rule("high"), {**rule("low"), "renameOutput": True, "outputKey": "Low"}]}
            },
        },
        {"name": "A", "type": "n8n-nodes-base.noOp"},
        {"name": "B", "type": "n8n-nodes-base.noOp"},
        {"name": "C", "type": "n8n-nodes-base.noOp"},
        connections={
            "Webhook": {"main": [[{"node": "Route", "type": "main", "index": 0}]]},
            "Route": {
                "main": [
                    [{"node": "A", "type": "main", "index": 0}],
                    [{"node": "B", "type": "main", "index": 0}],
                    [{"node": "C", "type": "main", "index": 0}],
                ]
            },
        },
    )
    result = import_n8n(document)
    route = nodes_of(result.graph)["route"]
    assert route["config"]["cases"] == {
        "output_0": '(trigger.body.level) == "high"',
        "Low": '(trigger.body.level) == "low"',
    }
    assert {("route", "output_0", "a"), ("route", "Low", "b"), ("route", "default", "c")} <= edges_of(result.graph)


def test_services_map_with_credentials() -> None:
    document = workflow(
        WEBHOOK,
        {
            "name": "Mail",
            "type": "n8n-nodes-base.emailSend",
            "typeVersion": 2,
            "parameters": {
                "toEmail": "ops@example.com",
                "subject": "=Order {{ $json.body.id }}",
                "emailFormat": "text",
                "text": "hi",
            },
            "credentials": {"smtp": {"id": "1", "name": "Mail server"}},
        },
        {
            "name": "Issue",
            "type": "n8n-nodes-base.github",
            "parameters": {
                "owner": "acme",
                "repository": "shop",
                "title": "=Order {{ $('Webhook').item.json.body.id }}",
                "body": "x",
            },
            "credentials": {"githubApi": {"id": "2", "name": "GitHub bot"}},
        },
        {
            "name": "Ticket",
            "type": "n8n-nodes-base.jira",
            "parameters": {"project": "OPS", "summary": "=Order {{ $('Webhook').item.json.body.id }}"},
            "credentials": {"jiraSoftwareCloudApi": {"id": "3", "name": "Jira"}},
        },
        {
            "name": "Page",
            "type": "n8n-nodes-base.pagerDuty",
            "parameters": {"title": "Order failed"},
            "credentials": {"pagerDutyApi": {"id": "4", "name": "PD"}},
        },
        {
            "name": "Save",
            "type": "n8n-nodes-base.postgres",
            "typeVersion": 2,
            "parameters": {
                "operation": "executeQuery",
                "query": "INSERT INTO orders (id) VALUES ($1)",
                "options": {"queryReplacement": "={{ $('Webhook').item.json.body.id }}"},
            },
            "credentials": {"postgres": {"id": "5", "name": "Orders DB"}},
        },
    )
    # queryReplacement as one expression is refused (Gorax wants named parameters): a placeholder
    result = import_n8n(document)
    nodes = nodes_of(result.graph)
    assert nodes["mail"]["type"] == "email.send"
    assert nodes["mail"]["config"] == {
        "credential": "mail_server",
        "to": ["ops@example.com"],
        "subject": "Order {{ trigger.body.id }}",
        "text": "hi",
    }
    assert nodes["issue"]["type"] == "github.create_issue"
    assert nodes["issue"]["config"]["repository"] == "acme/shop"
    assert nodes["issue"]["config"]["title"] == "Order {{ trigger.body.id }}"
    assert nodes["ticket"]["type"] == "jira.create_issue" and nodes["ticket"]["config"]["project"] == "OPS"
    assert nodes["page"]["type"] == "pagerduty.create_incident"
    assert nodes["save"]["type"] == ImportPlaceholder.type
    assert "expression" in nodes["save"]["config"]["reason"]
    needed = {(c["name"], c["type"]) for c in result.report.credentials}
    assert needed == {
        ("mail_server", "smtp-server"),
        ("github_bot", "github-token"),
        ("jira", "jira-credentials"),
        ("pd", "pagerduty-key"),
    }
    assert validate_graph(result.graph) == []

    document["nodes"][-1]["parameters"]["options"]["queryReplacement"] = "42"
    save = nodes_of(import_n8n(document).graph)["save"]
    assert save["type"] == "db.execute"
    assert save["config"] == {
        "credential": "orders_db",
        "sql": "INSERT INTO orders (id) VALUES (:p1)",
        "parameters": {"p1": "42"},
    }


def test_llm_chain_folds_its_openai_model() -> None:
    document = workflow(
        WEBHOOK,
        {
            "name": "Summarise",
            "type": "@n8n/n8n-nodes-langchain.chainLlm",
            "parameters": {"promptType": "define", "text": "=Summarise: {{ $json.body.text }}"},
        },
        {
            "name": "OpenAI Chat Model",
            "type": "@n8n/n8n-nodes-langchain.lmChatOpenAi",
            "parameters": {"model": "gpt-4o-mini", "options": {"temperature": 0.2}},
            "credentials": {"openAiApi": {"id": "9", "name": "OpenAI"}},
        },
        connections={
            "Webhook": {"main": [[{"node": "Summarise", "type": "main", "index": 0}]]},
            "OpenAI Chat Model": {
                "ai_languageModel": [[{"node": "Summarise", "type": "ai_languageModel", "index": 0}]]
            },
        },
    )
    result = import_n8n(document)
    chain = nodes_of(result.graph)["summarise"]
    assert chain["type"] == "llm.chat"
    assert chain["config"] == {
        "credential": "openai",
        "messages": [{"role": "user", "content": "Summarise: {{ trigger.body.text }}"}],
        "model": "gpt-4o-mini",
        "temperature": 0.2,
    }
    # the model node itself cannot run alone: kept as a placeholder, connected and disabled
    model = nodes_of(result.graph)["openai_chat_model"]
    assert model["type"] == ImportPlaceholder.type and model["disabled"] is True
    assert validate_graph(result.graph) == []


def test_wait_for_a_webhook_is_a_placeholder_and_error_outputs_route() -> None:
    document = workflow(
        MANUAL,
        {
            "name": "Call",
            "type": "n8n-nodes-base.httpRequest",
            "typeVersion": 4.2,
            "parameters": {"url": "https://x.test"},
            "onError": "continueErrorOutput",
        },
        {"name": "Wait", "type": "n8n-nodes-base.wait", "typeVersion": 1.1, "parameters": {"resume": "webhook"}},
        {"name": "Failed", "type": "n8n-nodes-base.noOp"},
        connections={
            "Start": {"main": [[{"node": "Call", "type": "main", "index": 0}]]},
            "Call": {
                "main": [
                    [{"node": "Wait", "type": "main", "index": 0}],
                    [{"node": "Failed", "type": "main", "index": 0}],
                ]
            },
        },
    )
    result = import_n8n(document)
    nodes = nodes_of(result.graph)
    assert nodes["call"]["on_error"] == "route"
    assert ("call", "error", "failed") in edges_of(result.graph)
    assert nodes["wait"]["type"] == ImportPlaceholder.type
    assert "human approval" in nodes["wait"]["config"]["reason"]


def test_a_condition_that_does_not_translate_makes_a_placeholder_that_keeps_its_handles() -> None:
    document = copy.deepcopy(n8n_file("GHC-7313_If_loose_validation.json"))
    condition = document["nodes"][2]["parameters"]["conditions"]["conditions"][0]
    condition["leftValue"] = "={{ $json.message.keys().length }}"
    document["nodes"].append(
        {"name": "Then", "type": "n8n-nodes-base.noOp", "typeVersion": 1, "position": [600, 0], "parameters": {}}
    )
    document["connections"]["If"] = {"main": [[], [{"node": "Then", "type": "main", "index": 0}]]}
    result = import_n8n(document)
    node = nodes_of(result.graph)["if"]
    assert node["type"] == ImportPlaceholder.type
    assert "condition not translated" in node["config"]["reason"] and ".keys()" in node["config"]["reason"]
    assert node["config"]["outputs"] == ["output_1"]
    assert ("if", "output_1", "then") in edges_of(result.graph)
    assert validate_graph(result.graph) == []


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ([], "$"),
        ("text", "$"),
        ({"connections": {}}, "nodes"),
        ({"nodes": [{"name": "A"}]}, "nodes[0].type"),
        ({"nodes": [{"name": "A", "type": "x", "position": "here"}]}, "nodes[0].position"),
        ({"nodes": [{"name": "A", "type": "x"}, {"name": "A", "type": "y"}]}, "nodes[1].name"),
        (
            {
                "nodes": [{"name": "A", "type": "x"}],
                "connections": {"A": {"main": [[{"node": "B", "type": "main", "index": 0}]]}},
            },
            'connections["A"].main[0][0].node',
        ),
        (
            {
                "nodes": [{"name": "A", "type": "x"}],
                "connections": {"A": {"main": [[{"node": "A", "index": "first"}]]}},
            },
            'connections["A"].main[0][0].index',
        ),
    ],
)
def test_malformed_input_names_the_json_path(document: Any, path: str) -> None:
    with pytest.raises(N8nImportError) as caught:
        import_n8n(document)
    assert caught.value.path == path


def test_fixture_dir_is_inside_the_repository() -> None:
    repo = Path(__file__).resolve().parents[3]
    assert N8N_FIXTURES.is_relative_to(repo)


def test_odd_parameters_and_cycles_still_give_a_valid_draft() -> None:
    """Hand-edited or other-version files: each node maps, or becomes a placeholder saying why;
    connections that close a cycle are left out and noted; the draft always validates."""
    types = [
        "n8n-nodes-base.httpRequest", "n8n-nodes-base.if", "n8n-nodes-base.switch", "n8n-nodes-base.set",
        "n8n-nodes-base.code", "n8n-nodes-base.wait", "n8n-nodes-base.scheduleTrigger", "n8n-nodes-base.slack",
        "n8n-nodes-base.executeWorkflow", "n8n-nodes-base.postgres", "n8n-nodes-base.merge",
        "n8n-nodes-base.splitInBatches", "n8n-nodes-base.emailSend", "n8n-nodes-base.awsS3",
        "@n8n/n8n-nodes-langchain.chainLlm", "n8n-nodes-base.noOp", "n8n-nodes-base.webhook", "x.unknown",
    ]  # fmt: skip
    values = ["x", 5, [1], {"a": "b"}, None, True, "={{ $json.a }}", "={{ $('A').item.json }}"]
    keys = ["options", "rule", "conditions", "rules", "assignments", "url", "jsCode", "amount", "values",
            "resource", "operation", "mode", "text", "query", "workflowJson", "source", "resume", "method"]  # fmt: skip
    draw = random.Random(7)
    for _ in range(300):
        nodes = [{"name": "A", "type": "n8n-nodes-base.manualTrigger"}] + [
            {
                "name": name,
                "type": draw.choice(types),
                "typeVersion": draw.choice([1, 2, 3, 3.4, 4.2]),
                "parameters": {k: draw.choice(values) for k in draw.sample(keys, 5)},
            }
            for name in "BCDE"
        ]
        connections: dict[str, Any] = {}
        for _ in range(6):
            source, target = draw.choice("ABCDE"), draw.choice("ABCDE")
            outputs = connections.setdefault(source, {"main": [[], []]})["main"]
            outputs[draw.randint(0, 1)].append({"node": target, "type": "main", "index": 0})
        result = import_n8n({"nodes": nodes, "connections": connections})
        assert validate_graph(result.graph) == [], (nodes, connections)


def test_deploying_a_graph_with_placeholders_from_git_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "imported.json"
    path.write_text(json.dumps(import_n8n(n8n_file("AwsS3.file.upload.V2.workflow.json")).graph))
    # refused before the tenant is looked up: no API is reached
    with pytest.raises(DeployStepError) as caught:
        graph_deployment(str(path), "default", api_url="http://127.0.0.1:9", api_key="gx_unused")
    assert "not_publishable" in str(caught.value) and "move_binary_data" in str(caught.value)


def test_if_v2_number_conditions_and_its_two_outputs() -> None:
    result = import_n8n(n8n_file("IfV2.number.json"))
    nodes = nodes_of(result.graph)
    # "or" of two number conditions; the right values are numbers, not text
    assert nodes["if"]["config"] == {"expression": "((steps.code.count) == 1) || ((steps.code.count) > 10)"}
    assert {("if", "true", "then"), ("if", "false", "else")} <= edges_of(result.graph)
    # IF passes its items on in n8n: after it, $json is still the IF's input
    assert nodes["then"]["config"] == {"value": "{{ steps.code }}"}
    assert nodes["code"]["type"] == ImportPlaceholder.type  # n8n's own test-data node


def test_an_unknown_trigger_becomes_a_trigger_placeholder() -> None:
    result = import_n8n(n8n_file("Test_workflow_chat_partial_execution.json"))
    nodes = nodes_of(result.graph)
    trigger = nodes["when_chat_message_received"]
    assert trigger["type"] == ImportPlaceholderTrigger.type
    assert trigger["config"]["original_type"] == "@n8n/n8n-nodes-langchain.chatTrigger"
    # raw JSON mode of Edit Fields
    assert nodes["node_1"]["config"] == {"value": {"this_my_field_1": "value", "this_my_field_2": 1}}
    assert ("when_chat_message_received", None, "node_1") in edges_of(result.graph)
    blockers = compile_graph(result.graph).publish_blockers()
    assert [b.node_id for b in blockers] == ["when_chat_message_received"]


def test_schedules_take_the_workflow_timezone_and_pinned_data_is_reported() -> None:
    document = n8n_file("Two_schedule_triggers.json")
    document["settings"] = {"timezone": "Europe/Berlin"}
    document["nodes"][1]["parameters"]["rule"]["interval"] = [
        {"field": "hours", "hoursInterval": 2, "triggerAtMinute": 15}
    ]
    document["pinData"] = {"Edit Fields": [{"json": {"x": 1}}]}
    result = import_n8n(document)
    assert nodes_of(result.graph)["trigger_a"]["config"] == {"cron": "15 */2 * * *", "timezone": "Europe/Berlin"}
    assert any(n["node_id"] == "(workflow)" and "Edit Fields" in n["message"] for n in result.report.notes)
