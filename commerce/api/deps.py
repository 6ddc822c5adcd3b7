"""Names handlers use to ask for injected values (Litestar's explicit NamedDependency)."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from commerce.api.runtime import CommerceRuntime
from commerce.services.access import Principal
from commerce.services.idempotency import Idempotency

Runtime: TypeAlias = NamedDependency[CommerceRuntime]
Caller: TypeAlias = NamedDependency[Principal]
IdemKey: TypeAlias = NamedDependency[Idempotency | None]
