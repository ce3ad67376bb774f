"""Webhook actuator for SOAR and ticketing tools: a JSON POST signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import os
import urllib.error
import urllib.request

import msgspec

from twinguard.pipelines.respond.actuators.base import ActuatorError, Step

SIGNATURE_HEADER = "X-Twinguard-Signature"


def signature(secret: bytes, body: bytes) -> str:
    """The header value a receiver recomputes: sha256=<hex HMAC of the raw body>."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookActuator:
    """POSTs {"step", "action", "request"}; 5xx and unreachable are retried, 4xx is final."""

    name = "webhook"

    def __init__(self, settings: dict[str, str]) -> None:
        self.url = settings.get("url", "")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"[respond.webhook] url must be an http(s) URL, got {self.url!r}")
        secret = os.environ.get(settings.get("secret_env", ""), "")
        if not secret:
            raise ValueError(f"[respond.webhook] needs the signing secret in the environment "
                             f"variable {settings.get('secret_env')!r} (it is empty)")
        self._secret = secret.encode()
        self.timeout_s = float(settings.get("timeout_s", "5"))

    def reverts(self, action: str) -> bool:
        return action == "suspend_user"

    def execute(self, step: Step) -> dict[str, str]:
        return self._post("execute", step)

    def revert(self, step: Step) -> dict[str, str]:
        return self._post("revert", step)

    def _post(self, kind: str, step: Step) -> dict[str, str]:
        body = msgspec.json.encode({"step": kind, "action": step.action, "device_type": step.device_type,
                                    "request": step.request})
        headers = {
            "Content-Type": "application/json", SIGNATURE_HEADER: signature(self._secret, body),
            "Idempotency-Key": f"{step.request.id}:{kind}"}
        # the scheme was checked at start: http or https only
        req = urllib.request.Request(self.url, data=body, method="POST", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                return {"webhook_status": str(resp.status)}
        except urllib.error.HTTPError as e:
            raise ActuatorError(f"webhook answered HTTP {e.code} {e.reason}",
                                retryable=e.code >= 500 or e.code == 429) from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ActuatorError(f"webhook {self.url} unreachable: {reason}", retryable=True) from None

    def close(self) -> None:
        pass
