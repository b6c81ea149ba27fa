"""The secrets a run's exits mask, known before its body runs again.

Everything a run sends out (its result, step records, logs, human-task snapshots) is masked with
``blocks.redact``, which knows the secrets this process loaded. A flow body that runs again in
the same flow run (a resume after an approval, a retry, a restart on another worker) takes the
results of completed nodes from the cache without loading their credentials, so a fresh
process would not know the secrets an earlier node's output may carry.
"""

from __future__ import annotations

import logging
from typing import Any

from flows.errors import CredentialsUnavailable
from flows.runtime.credentials import load_credential

logger = logging.getLogger("gorax.run")


async def preload_credentials(run: Any, plan: Any, *, resumed: bool) -> None:
    """Load every credential ``plan`` uses into the run's cache when its body runs again.

    Loading registers the credential's secret values with the process-wide redactor; the
    nodes that still have to run then find their credentials in the cache.
    """
    if not resumed or not run.tenant_id:
        return
    for name in sorted(plan.credential_refs):
        if name in run.credentials:
            continue
        try:
            run.credentials[name] = await load_credential(name, tenant_id=run.tenant_id, node_id="run")
        except CredentialsUnavailable as exc:
            # Deleted since the node used it: its values cannot be known here any more.
            logger.warning("credential %r of this resumed run cannot be loaded to mask its values: %s", name, exc)
