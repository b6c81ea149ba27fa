"""``python -m flows.prefect_server start ...``: Prefect's own ``prefect server`` command with the
server patches ``GORAX_PREFECT_PATCHES`` opts in to (:mod:`flows.prefect_patches`).

Without patches it is the stock command, with Gorax's log-line cap (:mod:`flows.logcap`).
``gorax up`` runs it only when patches are selected, and ``prefect server start`` otherwise.
"""

from __future__ import annotations

import sys

from prefect.cli import app

from flows.logcap import install_line_cap
from flows.prefect_patches import apply_patches
from flows.settings import get_settings


def main() -> None:
    settings = get_settings()
    install_line_cap(settings.log_max_line_bytes)
    apply_patches(settings.prefect.patches)
    sys.argv = ["prefect", "server", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
