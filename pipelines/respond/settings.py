"""The [respond] configuration section: routes, tiers, blast-radius guard, TTLs, actuator settings."""

from __future__ import annotations

from dataclasses import dataclass, field


def _routes() -> dict[str, str]:
    return {"quarantine": "mqtt", "lock_credentials": "mqtt", "rotate_key": "mqtt",
            "failsafe": "commands", "resync_twin": "commands", "rate_limit": "commands",
            "block_ip": "commands", "suspend_user": "webhook", "investigate": "webhook"}


def _rates() -> dict[str, str]:
    return {"mqtt": "60", "commands": "600", "webhook": "60"}


def _mqtt() -> dict[str, str]:
    return {"host": "127.0.0.1", "port": "1883", "admin_user": "twinguard-admin",
            "admin_password_env": "TWINGUARD_MQTT_ADMIN_PASSWORD", "timeout_s": "5",
            "secrets_dir": ""}


def _webhook() -> dict[str, str]:
    return {"url": "", "secret_env": "TWINGUARD_WEBHOOK_SECRET", "timeout_s": "5"}


@dataclass(frozen=True)
class RespondConfig:
    group_id: str = "twinguard-respond"
    life_critical_types: str = "infusion_pump,pump_plc"
    unknown_type_tier: str = "approval"
    ttl_s: float = 900.0
    guard_max_devices: int = 10
    guard_max_type_share: float = 0.2
    guard_window_s: float = 600.0
    retry_attempts: int = 4
    retry_backoff_s: float = 0.5
    tick_s: float = 0.2
    routes: dict[str, str] = field(default_factory=_routes)
    tiers: dict[str, str] = field(default_factory=dict)
    rate_per_min: dict[str, str] = field(default_factory=_rates)
    mqtt: dict[str, str] = field(default_factory=_mqtt)
    webhook: dict[str, str] = field(default_factory=_webhook)

    def life_critical(self) -> frozenset[str]:
        """Device types that are never cut off: every action on them needs approval."""
        return frozenset(t.strip() for t in self.life_critical_types.split(",") if t.strip())
