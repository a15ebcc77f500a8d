"""Opening a workspace: what its first start writes, once, whatever number of processes start.

`first_start` runs as one unit of work at every open and writes only what is missing: the
signing key, the built-in templates, the system emails' switches and the shipped automations.
It holds the workspace lock (`services.store.workspace_lock`) while it looks and writes.
"""

from __future__ import annotations

from datetime import datetime

from services.automations import seed_automations
from services.settings import seed_token_key
from services.store.database import Tx
from services.store.workspace_lock import lock_workspace
from services.system_emails import seed_system_emails
from services.template_store import seed_templates

__all__ = ["first_start"]


def first_start(tx: Tx, *, now: datetime) -> None:
    """Seed what is missing; never overwrite what an administrator changed."""
    lock_workspace(tx.conn)  # processes starting at once seed one after the other
    seed_token_key(tx)
    seed_templates(tx, now=now)
    seed_system_emails(tx)
    seed_automations(tx, now=now)
