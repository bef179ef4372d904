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
