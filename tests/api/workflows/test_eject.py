"""``GET /api/v1/workflows/{id}/eject`` and ``gorax eject`` (a file, or a stored workflow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from api.auth.permissions import Role
from tests.api.conftest import TenantHandle
from tests.api.workflows.conftest import create, publish
from tests.examples import EXAMPLES_DIR, load_example
from translator.eject import eject_graph, helper_source

EXAMPLE = EXAMPLES_DIR / "loop-over-items.json"


def _gorax(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    gorax = str(Path(sys.executable).parent / "gorax")
    return subprocess.run(
        [gorax, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120, check=False
    )


async def test_the_route_serves_the_published_version_as_python(
    sq_tenant: TenantHandle, sq_other: TenantHandle, sqlite_url: str, tmp_path: Path
) -> None:
    document = load_example("loop-over-items")
    async with sq_tenant.client() as admin:
        workflow = await create(admin, document)
        url = f"/api/v1/workflows/{workflow['id']}/eject"
        unpublished = await admin.get(url)
        assert unpublished.status_code == 409 and "no published version" in unpublished.json()["error"]["message"]
        await publish(admin, workflow["id"], "first")

        stored = (await admin.get(f"/api/v1/workflows/{workflow['id']}/versions/1")).json()["graph"]
        published = {"format": "gorax/graph@1", "name": document["name"], "description": "", **stored}
        # A later draft is not what the eject reads: the published version is.
        current = await admin.get(f"/api/v1/workflows/{workflow['id']}")
        draft = {**stored, "nodes": [n for n in stored["nodes"] if n["id"] != "done"]}
        draft["edges"] = [e for e in stored["edges"] if e["target"] != "done"]
        changed = await admin.put(
            f"/api/v1/workflows/{workflow['id']}", json={"graph": draft}, headers={"If-Match": current.headers["ETag"]}
        )
        assert changed.status_code == 200, changed.text

    async with sq_tenant.client(Role.VIEWER) as viewer:  # reading is enough
        flow = await viewer.get(url)
        assert flow.status_code == 200, flow.text
        assert flow.headers["content-type"].startswith("text/x-python")
        assert flow.headers["content-disposition"] == 'attachment; filename="enrich_indicators.py"'
        assert flow.text == eject_graph(published).source and 'steps["done"] = done(scope)' in flow.text
        helper = await viewer.get(url, params={"file": "helper"})
        assert helper.text == helper_source()
        assert 'filename="gorax_cel.py"' in helper.headers["content-disposition"]
        assert (await viewer.get(url, params={"version": 1})).text == flow.text
        missing = await viewer.get(url, params={"version": 7})
        assert missing.status_code == 404 and "has no version 7" in missing.json()["error"]["message"]

    async with sq_other.client() as other:  # another tenant's workflow does not exist for it
        assert (await other.get(url)).status_code == 404

    # The CLI reads the same stored version from the database.
    env = {"GORAX_DATABASE_URL": sqlite_url}
    target = tmp_path / "flow.py"
    done = _gorax("eject", "--workflow", workflow["id"], "--tenant", sq_tenant.id, "-o", str(target), env=env)
    assert done.returncode == 0, done.stderr
    assert target.read_text() == flow.text and (tmp_path / "gorax_cel.py").read_text() == helper.text
    other_tenant = _gorax("eject", "--workflow", workflow["id"], "--tenant", sq_other.id, env=env)
    assert other_tenant.returncode == 1 and f"workflow '{workflow['id']}' not found" in other_tenant.stderr


def test_cli_writes_the_flow_and_its_helper(tmp_path: Path) -> None:
    target = tmp_path / "enrich.py"
    done = _gorax("eject", str(EXAMPLE), "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert target.read_text() == eject_graph(load_example("loop-over-items")).source
    assert (tmp_path / "gorax_cel.py").read_text() == helper_source()
    assert f"wrote {target}" in done.stdout

    printed = _gorax("eject", str(EXAMPLE))
    assert printed.returncode == 0 and printed.stdout == target.read_text()
    assert "gorax_cel.py" in printed.stderr  # says what else the file needs


def test_cli_refuses_what_it_cannot_eject(tmp_path: Path) -> None:
    document = load_example("fan-out-join")
    document["nodes"].append(
        {"id": "store", "type": "db.execute", "config": {"credential": "warehouse", "sql": "SELECT 1"}}
    )
    document["edges"].append({"source": "done", "target": "store"})
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(document))
    refused = _gorax("eject", str(path), "-o", str(tmp_path / "out.py"))
    assert refused.returncode == 1
    assert "node 'store' (db.execute)" in refused.stderr and not (tmp_path / "out.py").exists()

    document["edges"].append({"source": "done", "target": "nowhere"})
    path.write_text(json.dumps(document))
    invalid = _gorax("eject", str(path))
    assert invalid.returncode == 1 and "the graph is not valid" in invalid.stderr and "nowhere" in invalid.stderr

    both = _gorax("eject", str(path), "--workflow", "x")
    assert both.returncode == 2 and "not both" in both.stderr
    no_tenant = _gorax("eject", "--workflow", "x")
    assert no_tenant.returncode == 2 and "--tenant" in no_tenant.stderr
