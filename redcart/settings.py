"""Settings from the environment (REDCART_*), with dev-friendly defaults for the embedded mode.

Secrets (admin key, secret key) come from the environment; when unset, the embedded default
generates them once into the var directory so `make run` works with nothing configured.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from commerce.config import CommerceConfig
from commerce.domain.pricing import CbecPolicy, FreightRates


def _attribution_settings(env: dict[str, str]) -> object:
    from projections.attribution_policy import read_settings  # one parser for API and workers

    return read_settings(env)


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name) or default)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds") from None


def _secret_file(path: Path, nbytes: int) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    var_dir: Path
    host: str
    port: int
    admin_key: str
    secret_key: str
    reservation_ttl_seconds: int
    sweep_interval_seconds: float
    max_body_bytes: int
    freight: FreightRates
    cbec: CbecPolicy
    writer_max_batch: int
    projections: str  # "inprocess" (default) or "worker": `redcart worker projections` keeps them
    # "inprocess" (default) or "worker": `redcart worker claim-orders` places flash-deal
    # claims' orders (livestream.engine.placement) off the API processes' cores
    claim_orders: str = "inprocess"
    # Where other API processes reach this one with flash-deal commands it owns (PostgreSQL
    # only): a listener of its own per process, so it works behind a shared port too.
    internal_host: str = "127.0.0.1"
    internal_port: int = 0  # 0: any free port
    settle_grace_seconds: int = 30
    # How long the claim-orders and read-model workers may hold their catch-up while their log
    # is in a burst, such as a flash sale's first second (projections.burst); 0: never
    worker_hold_seconds: float = 1.0
    # Referral attribution and commission (projections.attribution_policy). The policy in force
    # when an order is placed decides it; REDCART_ATTRIBUTION_POLICIES (a JSON list of
    # {"from": ISO time, "model", "click_window_hours", "view_window_hours",
    # "refund_window_days"}) keeps earlier policies so a rebuild decides history the same way.
    attribution_model: str = "last_click"
    attribution_click_window_hours: int = 7 * 24
    attribution_view_window_hours: int = 24
    attribution_policies: str = ""
    commission_refund_window_days: int = 15  # counted from delivery: the after-sales window
    commission_payout_day: int = 15  # day of the month locked commissions become payable
    dashboard_timezone: str = "Asia/Shanghai"  # the merchant dashboard's days

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        var_dir = Path(env.get("REDCART_VAR_DIR", "var")).resolve()
        return cls(
            database_url=env.get("REDCART_DATABASE_URL") or None,
            var_dir=var_dir,
            host=env.get("REDCART_HOST", "127.0.0.1"),
            port=int(env.get("REDCART_PORT", "8000")),
            admin_key=env.get("REDCART_ADMIN_KEY") or _secret_file(var_dir / "admin.key", 24),
            secret_key=env.get("REDCART_SECRET_KEY") or _secret_file(var_dir / "secret.key", 32),
            reservation_ttl_seconds=int(env.get("REDCART_RESERVATION_TTL_SECONDS", "900")),
            sweep_interval_seconds=float(env.get("REDCART_SWEEP_INTERVAL_SECONDS", "5")),
            max_body_bytes=int(env.get("REDCART_MAX_BODY_BYTES", str(64 * 1024))),
            freight=FreightRates(**json.loads(env.get("REDCART_FREIGHT_RATES", "{}"))),
            cbec=CbecPolicy(
                **json.loads(env.get("REDCART_CBEC_POLICY", "{}"), parse_float=Decimal)
            ),
            writer_max_batch=int(env.get("REDCART_WRITER_MAX_BATCH", "256")),
            projections=env.get("REDCART_PROJECTIONS", "inprocess"),
            claim_orders=env.get("REDCART_CLAIM_ORDERS", "inprocess"),
            internal_host=env.get("REDCART_INTERNAL_HOST", "127.0.0.1"),
            internal_port=int(env.get("REDCART_INTERNAL_PORT", "0")),
            settle_grace_seconds=int(env.get("REDCART_SETTLE_GRACE_SECONDS", "30")),
            worker_hold_seconds=_seconds(env, "REDCART_WORKER_HOLD_SECONDS", 1.0),
            **vars(_attribution_settings(env)),
        )

    def __post_init__(self) -> None:
        if self.projections not in ("inprocess", "worker"):
            raise ValueError("REDCART_PROJECTIONS must be 'inprocess' or 'worker'")
        if self.claim_orders not in ("inprocess", "worker"):
            raise ValueError("REDCART_CLAIM_ORDERS must be 'inprocess' or 'worker'")
        if not 0 <= self.worker_hold_seconds <= 60:
            raise ValueError("REDCART_WORKER_HOLD_SECONDS must be between 0 and 60")

    def commerce_config(self) -> CommerceConfig:
        return CommerceConfig(
            secret_key=self.secret_key.encode(),
            reservation_ttl=timedelta(seconds=self.reservation_ttl_seconds),
            freight=self.freight,
            cbec=self.cbec,
        )
