"""The operator-only place a released MQTT password goes: private modes, atomic replace, safe names,
and a folder others can read is refused with what to fix."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from twinguard.pipelines.respond.actuators.escrow import SecretEscrow


def test_a_secret_is_kept_private_and_only_its_fingerprint_is_told(tmp_path: Path) -> None:
    escrow = SecretEscrow(str(tmp_path / "vault"))
    told = escrow.put("smart_meter-000042", "s3cret")
    kept = Path(told["secret_file"])
    assert kept == tmp_path / "vault" / "smart_meter-000042.secret"
    assert kept.read_text() == "s3cret\n" and "s3cret" not in str(told)
    assert told["secret_sha256"] == hashlib.sha256(b"s3cret").hexdigest()[:16]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(escrow.dir.stat().st_mode) == 0o700
    escrow.put("smart_meter-000042", "newer")  # a later release replaces it
    assert kept.read_text() == "newer\n" and len(list(escrow.dir.iterdir())) == 1


def test_a_client_name_never_escapes_the_folder(tmp_path: Path) -> None:
    escrow = SecretEscrow(str(tmp_path / "vault"))
    for client in ("../../etc/passwd", ".hidden", "gw/01"):
        path = Path(escrow.put(client, "x")["secret_file"])
        assert path.parent == escrow.dir and not path.name.startswith(".")


def test_a_folder_others_can_read_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "shared"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    with pytest.raises(ValueError, match="readable by others.*chmod 700"):
        SecretEscrow(str(open_dir))
