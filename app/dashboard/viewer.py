"""Who is looking: an operator (every tenant) or a tenant admin (one tenant, through RLS)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

OPERATOR = "operator"
TENANT_ADMIN = "tenant_admin"


@dataclass(frozen=True)
class Viewer:
    kind: str
    name: str
    tenant_id: uuid.UUID | None = None
    #: A tenant admin's account id (re-checked on every request: a disabled admin is out).
    admin_id: uuid.UUID | None = None
    tenant_name: str | None = None

    @property
    def operator(self) -> bool:
        return self.kind == OPERATOR

    @property
    def scope(self) -> str:
        """What the viewer's data depends on: live views are shared within one scope."""
        return OPERATOR if self.operator else f"tenant:{self.tenant_id}"
