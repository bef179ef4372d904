"""local.settings.example.json: what `func start` needs, no secret, every name one the app reads."""

from __future__ import annotations

import json
from pathlib import Path

from devtools.emulator.command import EXAMPLE_SETTINGS, local_settings
from remediation.settings import SETTING_NAMES, Settings

ROOT = Path(__file__).resolve().parents[1]
#: Read by the Functions host or azure-identity / requests, not by the app's settings module.
HOST_AND_SDK = {
    "FUNCTIONS_WORKER_RUNTIME",
    "AzureWebJobsStorage",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
}
SECRETS = ("TEAMS_WEBHOOK_URL", "SMTP_PASSWORD", "STATE_CONNECTION_STRING")


def example() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(EXAMPLE_SETTINGS.read_text(encoding="utf-8"))
    return loaded


def test_the_example_names_only_settings_something_reads() -> None:
    values = example()["Values"]
    assert isinstance(values, dict)
    unknown = set(values) - set(SETTING_NAMES) - HOST_AND_SDK
    assert unknown == set(), "a name nothing reads is a typo waiting to be copied"


def test_the_example_holds_no_secret() -> None:
    values = example()["Values"]
    assert isinstance(values, dict)
    for name in SECRETS:
        # Azurite's well-known development connection string is the only non-empty "secret" allowed.
        assert values.get(name, "") in ("", "UseDevelopmentStorage=true"), name
    assert "AccountKey=" not in EXAMPLE_SETTINGS.read_text(encoding="utf-8")


def test_the_example_is_valid_settings_and_stays_in_audit_mode() -> None:
    values = example()["Values"]
    assert isinstance(values, dict)
    settings = Settings.from_env({k: str(v) for k, v in values.items()})
    assert not settings.enforce  # a developer's first `func start` never writes


def test_local_settings_aims_the_example_at_the_emulator() -> None:
    env = {"ARM_ENDPOINT": "https://127.0.0.1:4443", "IDENTITY_HEADER": "h"}
    written = local_settings(example(), env)
    values = written["Values"]
    assert values["ARM_ENDPOINT"] == "https://127.0.0.1:4443"  # the emulator's, not the example's
    assert values["IDENTITY_HEADER"] == "h"
    assert values["REMEDIATION_MODE"] == "audit"  # the rest kept as the example has it
    assert written["IsEncrypted"] is False


def test_the_real_file_is_never_committed_nor_deployed() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "local.settings.json" in ignored
    unpackaged = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    assert {"local.settings.json", "local.settings.example.json", "devtools/"} <= set(unpackaged)
