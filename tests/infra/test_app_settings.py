"""Every app setting the code reads is set by Bicep, and its defaults are valid for the code.

The names come from remediation/settings.py (SETTING_NAMES); the Bicep side is
the ``remediationAppSettings`` object in infra/main.bicep, read with pycep. A
small evaluator resolves each value the way ARM would on a first deployment
with default parameters, and ``Settings.from_env`` must accept the result:
a default that the code would reject fails here, not in Azure.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from remediation.settings import SETTING_NAMES, Mode, Settings
from tests.infra.bicep import module, parse, variable

MAIN = "main.bicep"
SUBSCRIPTION_ID = "00000000-0000-0000-0000-0000000000aa"
RESOURCE_TOKEN = "q4tx2cz3lmb7e"

# Values only Azure knows at deployment time, as a first deployment would get them.
AZURE_VALUES = {
    "identity.outputs.clientId": "11111111-1111-1111-1111-111111111111",
    "identity.outputs.principalId": "22222222-2222-2222-2222-222222222222",
    "keyVault.outputs.teamsWebhookSecretUri": "https://kv-lock-x.vault.azure.net/secrets/teams-webhook-url",
    "keyVault.outputs.smtpPasswordSecretUri": "https://kv-lock-x.vault.azure.net/secrets/smtp-password",
    "evidence.outputs.customerId": "33333333-3333-3333-3333-333333333333",
    "email.outputs.senderAddress": "DoNotReply@0000.azurecomm.net",
    "email.outputs.endpoint": "https://acs-lockdown-x.europe.communication.azure.com",
    "environment().resourceManager": "https://management.azure.com/",
    "environment().suffixes.storage": "core.windows.net",
    "subscription().subscriptionId": SUBSCRIPTION_ID,
}


class Evaluator:
    """Evaluates the pycep JSON of a Bicep expression in main.bicep, parameters at their defaults.

    pycep drops the quotes of string literals, so a bare string is a
    parameter or variable when one has that name, and a literal otherwise.
    """

    def __init__(self, doc: dict[str, Any], overrides: dict[str, Any] | None = None) -> None:
        self.params = {name: p["default"] for name, p in doc["parameters"].items()}
        self.params.update(overrides or {})
        self.vars = {name: v["value"] for name, v in doc["variables"].items()}

    def __call__(self, node: Any) -> Any:
        if isinstance(node, bool | int) or node is None:
            return node
        if isinstance(node, str):
            if node in self.params:
                return self.params[node]
            if node in self.vars:
                return self(self.vars[node])
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._interpolated(m.group(1).strip())), node)
        if isinstance(node, list):
            return [self(item) for item in node]
        if "function" in node:
            return self._function(node["function"])
        if "operator" in node:
            return self._operator(node["operator"])
        raise AssertionError(f"cannot evaluate {node!r}")

    def _interpolated(self, expression: str) -> Any:
        # pycep leaves ${...} inside strings unparsed; only names and dotted outputs occur there.
        return AZURE_VALUES[expression] if expression in AZURE_VALUES else self(expression)

    def _path(self, node: Any) -> str:
        """'a.b.c' of a property-accessor chain, function calls as 'f()'."""
        if isinstance(node, str):
            return node
        if "function" in node:
            return str(node["function"]["type"]) + "()"
        operands = node["operator"]["operands"]
        return self._path(operands["operand_1"]) + "." + self._path(operands["operand_2"])

    def _function(self, fn: dict[str, Any]) -> Any:
        kind, args = fn["type"], list((fn.get("parameters") or {}).values())
        if kind == "empty":
            return not self(args[0])
        if kind == "string":
            value = self(args[0])
            return str(value).lower() if isinstance(value, bool) else str(value)
        if kind == "ends_with":
            return str(self(args[0])).endswith(str(self(args[1])))
        if kind == "length":
            return len(self(args[0]))
        if kind == "substring":
            text = str(self(args[0]))
            start, length = self(args[1]), self(args[2])
            return text[start : start + length]
        raise AssertionError(f"no evaluator for function {kind}()")

    def _operator(self, op: dict[str, Any]) -> Any:
        kind, operands = op["type"], op["operands"]
        if kind == "conditional":
            branch = "true_value" if self(operands["condition"]) else "false_value"
            return self(operands[branch])
        if kind == "not":
            return not self(operands["bool_value"])
        if kind == "substract":  # pycep's spelling
            return self(operands["operand_1"]) - self(operands["operand_2"])
        if kind == "property_accessor":
            path = self._path({"operator": op})
            if path in AZURE_VALUES:
                return AZURE_VALUES[path]
            raise AssertionError(f"no value for {path}")
        raise AssertionError(f"no evaluator for operator {kind}")


def bicep_settings() -> dict[str, Any]:
    value: dict[str, Any] = variable(MAIN, "remediationAppSettings")
    return value


def evaluated(overrides: dict[str, Any] | None = None) -> dict[str, str]:
    evaluate = Evaluator(parse(MAIN), overrides)
    # environment().resourceManager reaches the settings through two variables.
    evaluate.vars["resourceManager"] = AZURE_VALUES["environment().resourceManager"]
    evaluate.vars["storageSuffix"] = AZURE_VALUES["environment().suffixes.storage"]
    evaluate.vars["resourceToken"] = RESOURCE_TOKEN  # uniqueString() is ARM's secret hash
    result = {}
    for name, node in bicep_settings().items():
        value = evaluate(node)
        assert isinstance(value, str), f"{name} must be a string app setting, Bicep gives {value!r}"
        result[name] = value
    return result


def test_every_setting_the_code_reads_is_set_in_bicep() -> None:
    missing = sorted(set(SETTING_NAMES) - set(bicep_settings()))
    assert missing == [], f"set these in infra/main.bicep remediationAppSettings: {missing}"


def test_bicep_sets_no_setting_the_code_does_not_read() -> None:
    unknown = sorted(set(bicep_settings()) - set(SETTING_NAMES))
    assert unknown == [], f"not in remediation/settings.py SETTING_NAMES: {unknown}"


def test_the_function_app_receives_the_settings_and_host_settings_do_not_shadow_them() -> None:
    assert module(MAIN, "api")["params"]["appSettings"] == "remediationAppSettings"
    api_settings = module("app/api.bicep", "functionApp")["params"]["appSettingsKeyValuePairs"]
    assert api_settings == {
        "function": {"type": "union", "parameters": {"arg_1": "hostSettings", "arg_2": "appSettings"}}
    }
    host = variable("app/api.bicep", "hostSettings")
    assert not set(host) & set(SETTING_NAMES)
    # Identity-based host storage: no connection string, no key.
    assert host["AzureWebJobsStorage__credential"] == "managedidentity"
    assert {"AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__queueServiceUri"} <= set(host)
    assert "AzureWebJobsStorage" not in host
    assert host["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"


def test_first_deployment_defaults_are_accepted_by_the_code_and_safe() -> None:
    env = evaluated()
    settings = Settings.from_env(env)
    assert settings.mode is Mode.AUDIT
    assert settings.arm_endpoint == "https://management.azure.com"
    assert env["ARM_ENDPOINT"] == "https://management.azure.com", "trailing slash must be stripped"
    assert settings.subscription_id == SUBSCRIPTION_ID
    assert env["SWEEP_SCHEDULE"] == "0 */15 * * * *"  # the timer binding's %SWEEP_SCHEDULE%
    assert settings.lockdown_tag == "cyclecloud-lockdown"
    assert (settings.service_tags_location, settings.service_tags_refresh_hours) == ("", 24.0)
    assert settings.service_endpoint_repair is False
    assert env["SERVICE_ENDPOINT_REPAIR"] == "false"
    assert settings.state_table_endpoint == f"https://stlock{RESOURCE_TOKEN}.table.core.windows.net/"
    assert settings.state_table_prefix == "lockdown"
    assert settings.log_analytics_workspace_id == AZURE_VALUES["evidence.outputs.customerId"]
    # Channels are off until configured, and present as empty strings.
    assert env["TEAMS_WEBHOOK_URL"] == ""
    assert env["SMTP_PASSWORD"] == ""
    assert env["STATE_CONNECTION_STRING"] == ""
    assert env["ACS_ENDPOINT"] == ""


def test_secrets_are_key_vault_references_when_given() -> None:
    env = evaluated({"teamsWebhookUrl": "https://example.invalid/hook", "smtpPassword": "pw"})
    assert env["TEAMS_WEBHOOK_URL"] == (
        "@Microsoft.KeyVault(SecretUri=https://kv-lock-x.vault.azure.net/secrets/teams-webhook-url)"
    )
    assert (
        env["SMTP_PASSWORD"] == "@Microsoft.KeyVault(SecretUri=https://kv-lock-x.vault.azure.net/secrets/smtp-password)"
    )
    # The secret value itself never reaches an app setting.
    assert "example.invalid" not in "".join(env.values())


def test_acs_email_wires_endpoint_and_sender() -> None:
    env = evaluated({"enableAcsEmail": True})
    assert env["ACS_ENDPOINT"] == AZURE_VALUES["email.outputs.endpoint"]
    assert env["ALERT_EMAIL_FROM"] == AZURE_VALUES["email.outputs.senderAddress"]
    assert evaluated({"enableAcsEmail": True, "alertEmailFrom": "ops@contoso.example"})["ALERT_EMAIL_FROM"] == (
        "ops@contoso.example"
    )
    Settings.from_env(env)


@pytest.mark.parametrize(
    ("param", "value", "setting", "expected"),
    [
        ("remediationMode", "enforce", "REMEDIATION_MODE", "enforce"),
        ("smtpPort", 2525, "SMTP_PORT", "2525"),
        ("smtpStartTls", False, "SMTP_STARTTLS", "false"),
        ("alertReminderHours", 6, "ALERT_REMINDER_HOURS", "6"),
        ("alertMinSeverityTeams", "high", "ALERT_MIN_SEVERITY_TEAMS", "high"),
        ("serviceTagsLocation", "westeurope", "SERVICE_TAGS_LOCATION", "westeurope"),
        ("serviceTagsRefreshHours", 6, "SERVICE_TAGS_REFRESH_HOURS", "6"),
        ("enableServiceEndpointRepair", True, "SERVICE_ENDPOINT_REPAIR", "true"),
    ],
)
def test_parameters_reach_their_setting_in_a_form_the_code_accepts(
    param: str, value: Any, setting: str, expected: str
) -> None:
    env = evaluated({param: value})
    assert env[setting] == expected
    Settings.from_env(env)


def test_remediation_mode_defaults_to_audit_and_allows_only_the_codes_modes() -> None:
    declared = parse(MAIN)["parameters"]["remediationMode"]
    assert declared["default"] == "audit"
    allowed = next(d["argument"] for d in declared["decorators"] if d["type"] == "allowed")
    assert sorted(allowed) == sorted(m.value for m in Mode)


def test_service_endpoint_repair_setting_and_role_rights_come_from_one_parameter() -> None:
    """The code repairs only when told to, and is told to exactly when the role can do it."""
    assert evaluated()["SERVICE_ENDPOINT_REPAIR"] == "false"
    env = evaluated({"enableServiceEndpointRepair": True})
    assert Settings.from_env(env).service_endpoint_repair is True
    assert module(MAIN, "remediatorRole")["params"]["enableServiceEndpointRepair"] == "enableServiceEndpointRepair"
