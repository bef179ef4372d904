"""Settings: the Service Tags API settings and service-endpoint repair, validated once."""

from __future__ import annotations

import pytest

from remediation.errors import SettingsError
from remediation.settings import SETTING_NAMES, Settings


def test_service_tags_api_is_off_by_default_and_refreshes_daily() -> None:
    settings = Settings.from_env({})
    assert settings.service_tags_location == ""
    assert settings.service_tags_refresh_hours == 24.0


@pytest.mark.parametrize(("given", "expected"), [("westeurope", "westeurope"), (" WestEurope ", "westeurope"),
                                                 ("eastus2", "eastus2"), ("usgovvirginia", "usgovvirginia")])  # fmt: skip
def test_service_tags_location_accepts_region_names(given: str, expected: str) -> None:
    assert Settings.from_env({"SERVICE_TAGS_LOCATION": given}).service_tags_location == expected


@pytest.mark.parametrize("bad", ["west europe", "West-Europe", "2westeurope", "westeurope/../x", "w"])
def test_service_tags_location_rejects_what_is_not_a_region_name(bad: str) -> None:
    with pytest.raises(SettingsError, match="SERVICE_TAGS_LOCATION: not an Azure region name") as caught:
        Settings.from_env({"SERVICE_TAGS_LOCATION": bad})
    assert caught.value.where == "SERVICE_TAGS_LOCATION"


def test_file_and_api_together_are_refused_naming_both() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"SERVICE_TAGS_PATH": "tags.json", "SERVICE_TAGS_LOCATION": "westeurope"})
    assert "SERVICE_TAGS_PATH" in caught.value.where
    assert "SERVICE_TAGS_LOCATION" in caught.value.where
    assert "not both" in str(caught.value)


@pytest.mark.parametrize(("given", "message"), [("0", "must be positive"), ("-1", "must be positive"),
                                                ("daily", "not a number")])  # fmt: skip
def test_refresh_hours_must_be_a_positive_number(given: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"SERVICE_TAGS_REFRESH_HOURS: {message}"):
        Settings.from_env({"SERVICE_TAGS_REFRESH_HOURS": given})
    assert Settings.from_env({"SERVICE_TAGS_REFRESH_HOURS": "1.5"}).service_tags_refresh_hours == 1.5


def test_the_new_settings_are_named() -> None:
    assert {"SERVICE_TAGS_LOCATION", "SERVICE_TAGS_REFRESH_HOURS"} <= set(SETTING_NAMES)


def test_state_retention_is_a_week_by_default() -> None:
    assert Settings.from_env({}).state_retention_days == 7
    assert Settings.from_env({"STATE_RETENTION_DAYS": " 30 "}).state_retention_days == 30
    assert "STATE_RETENTION_DAYS" in SETTING_NAMES


@pytest.mark.parametrize(("given", "message"), [("0", "must be between 1"), ("-3", "must be between 1"),
                                                ("1.5", "not an integer"), ("week", "not an integer")])  # fmt: skip
def test_state_retention_must_be_a_positive_whole_number_of_days(given: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"STATE_RETENTION_DAYS: {message}"):
        Settings.from_env({"STATE_RETENTION_DAYS": given})


def test_secrets_never_print() -> None:
    env = {
        "TEAMS_WEBHOOK_URL": "https://hooks.example/workflows/x?sig=TEAMS-SIGNATURE",
        "SMTP_PASSWORD": "SMTP-PASSWORD",
        "STATE_CONNECTION_STRING": "AccountKey=STORAGE-KEY",
    }
    settings = Settings.from_env(env)
    shown = f"{settings!r} {settings} {settings.model_dump()}"
    for value in ("TEAMS-SIGNATURE", "SMTP-PASSWORD", "STORAGE-KEY"):
        assert value not in shown  # SecretStr masks itself in repr, str and dumps
    assert settings.smtp_password.get_secret_value() == "SMTP-PASSWORD"  # still there for the SMTP login


def test_every_field_is_an_app_setting_the_docs_name() -> None:
    # SETTING_NAMES feeds the docs and infra tests; a field without its app setting would be unset in Azure.
    aliases = {field.validation_alias for field in Settings.model_fields.values()}
    assert aliases <= set(SETTING_NAMES)
    assert all(SETTING_NAMES[str(alias)] for alias in aliases)  # each says what it is for


def test_constructing_settings_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests build Settings(...) by field name; a stray app setting in the environment must not leak in.
    monkeypatch.setenv("REMEDIATION_MODE", "enforce")
    monkeypatch.setenv("SMTP_PORT", "25")
    assert Settings().mode == "audit"
    assert Settings().smtp_port == 587
    assert Settings.from_env().mode == "enforce"  # from_env reads the environment by default


@pytest.mark.parametrize(("env", "where", "message"), [
    ({"SMTP_PORT": "70000"}, "SMTP_PORT", "must be between 1 and 65535, not 70000"),
    ({"REMEDIATION_MODE": "fix"}, "REMEDIATION_MODE", "must be 'enforce' or 'audit'"),
    ({"HTTP_AUTH": "basic"}, "HTTP_AUTH", "must be entra or key"),
    ({"ALERT_MIN_SEVERITY_EMAIL": "urgent"}, "ALERT_MIN_SEVERITY_EMAIL", "must be one of"),
    ({"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS", "not a boolean"),
    ({"AZURE_SUBSCRIPTION_ID": "not-a-guid"}, "AZURE_SUBSCRIPTION_ID", "not a subscription GUID"),
    ({"ARM_ENDPOINT": "http://management.azure.com"}, "ARM_ENDPOINT", "must be an https:// URL"),
    ({"TEAMS_WEBHOOK_URL": "http://hooks.example/x"}, "TEAMS_WEBHOOK_URL", "must be an https:// URL"),
])  # fmt: skip
def test_a_bad_setting_is_named_with_what_was_wrong(env: dict[str, str], where: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"{where}: {message}") as caught:
        Settings.from_env(env)
    assert caught.value.where == where


def test_values_are_trimmed_and_empty_means_the_default() -> None:
    settings = Settings.from_env({"SMTP_PORT": " 25 ", "REMEDIATION_MODE": " ", "ARM_ENDPOINT": "https://arm.local:8443/",
                                  "ALERT_EMAIL_TO": " a@x.example , ,b@x.example", "HTTP_AUTH": "ENTRA"})  # fmt: skip
    assert settings.smtp_port == 25
    assert settings.mode == "audit"  # blank: the default
    assert settings.arm_endpoint == "https://arm.local:8443"  # no trailing slash (arm_scope appends /.default)
    assert settings.email_to == ("a@x.example", "b@x.example")
    assert settings.http_auth == "entra"
