"""The Bicep files parse, reference what exists, and keep the security settings checkov cannot see.

checkov scans only resources declared in local files, and not those behind
``if (...)``; the Azure Verified Modules are registry references it cannot
open (``--skip-download``). The settings that matter are asserted here on the
parameters we hand to those modules (docs/checkov.md lists the gaps).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from remediation.state import TablePendingEvents, TableStateStore, TableTopologyCache
from tests.infra.bicep import INFRA, ROOT, bicep_files, module, parse, resource, resources_of_type, variable
from tests.infra.rbac_map import role_actions

AVM = re.compile(r"^public:avm/(res|ptn|utl)/[a-z0-9-]+/[a-z0-9-]+:\d+\.\d+\.\d+$")


def relative(path: Path) -> str:
    return path.relative_to(INFRA).as_posix()


def test_there_is_bicep_to_check() -> None:
    names = {relative(p) for p in bicep_files()}
    assert {"main.bicep", "eventgrid.bicep", "app/api.bicep", "app/remediator-role.bicep"} <= names


@pytest.mark.parametrize("path", bicep_files(), ids=relative)
def test_every_bicep_file_parses(path: Path) -> None:
    doc = parse(relative(path))
    assert doc["resources"] or doc["modules"], f"{path} declares nothing"


@pytest.mark.parametrize("path", bicep_files(), ids=relative)
def test_module_references_exist_or_are_pinned_avm_versions(path: Path) -> None:
    for name, mod in parse(relative(path))["modules"].items():
        detail = mod["detail"]
        if mod["type"] == "local":
            assert (path.parent / detail["path"]).is_file(), f"{path}: module {name} -> {detail['path']} is missing"
        else:
            assert AVM.match(detail["full"]), f"{path}: module {name} must be a pinned br/public:avm module"


@pytest.mark.parametrize("path", bicep_files(), ids=relative)
def test_loaded_json_files_exist(path: Path) -> None:
    for name in re.findall(r"loadJsonContent\('([^']+)'", path.read_text(encoding="utf-8")):
        assert (path.parent / name).is_file(), f"{path}: loadJsonContent('{name}') is missing"


def test_main_is_subscription_scoped_and_creates_the_resource_group() -> None:
    doc = parse("main.bicep")
    assert doc["globals"]["scope"]["value"] == "subscription"
    assert parse("eventgrid.bicep")["globals"]["scope"]["value"] == "subscription"
    assert [r["type"] for r in doc["resources"].values()].count("Microsoft.Resources/resourceGroups") == 1


def test_storage_is_identity_only() -> None:
    params = module("main.bicep", "storage")["params"]
    assert params["allowSharedKeyAccess"] is False
    assert params["allowBlobPublicAccess"] is False
    assert params["supportsHttpsTrafficOnly"] is True
    assert params["minimumTlsVersion"] == "TLS1_2"
    prefix = variable("main.bicep", "stateTablePrefix")
    assert prefix == "lockdown"
    tables = {t.replace("${stateTablePrefix}", prefix) for t in variable("main.bicep", "stateTables")}
    assert tables == tables_the_code_uses(prefix)


def tables_the_code_uses(prefix: str) -> set[str]:
    """The tables the state stores open (alerts and audit, the topology cache, pending events),
    recorded by a stand-in for TableServiceClient (no storage needed)."""

    class Recorder:
        def __init__(self) -> None:
            self.names: set[str] = set()

        def create_table_if_not_exists(self, name: str) -> object:
            self.names.add(name)
            return object()

    recorder = Recorder()
    TableStateStore(recorder, prefix=prefix)  # type: ignore[arg-type]
    TableTopologyCache(recorder, prefix=prefix)  # type: ignore[arg-type]
    TablePendingEvents(recorder, prefix=prefix)  # type: ignore[arg-type]
    return recorder.names


def test_function_app_is_flex_consumption_linux_python_311_with_user_identity() -> None:
    plan = module("main.bicep", "appServicePlan")["params"]
    assert plan["skuName"] == "FC1"
    assert plan["reserved"] is True
    api = module("main.bicep", "api")["params"]
    assert api["runtimeName"] == "python"
    assert api["runtimeVersion"] == "3.11"
    assert api["serviceName"] == "api"
    site = module("app/api.bicep", "functionApp")["params"]
    assert site["kind"] == "functionapp,linux"
    assert site["httpsOnly"] is True
    assert site["siteConfig"]["ftpsState"] == "Disabled"
    assert site["siteConfig"]["minTlsVersion"] == "1.2"
    assert site["managedIdentities"] == {"userAssignedResourceIds": ["identityId"]}
    assert site["keyVaultAccessIdentityResourceId"] == "identityId"
    deployment = site["functionAppConfig"]["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"
    # Flex Consumption rejects these; the runtime comes from functionAppConfig.
    host = variable("app/api.bicep", "hostSettings")
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"} & set(host)


def test_application_insights_takes_entra_tokens_only() -> None:
    assert module("main.bicep", "appInsights")["params"]["disableLocalAuth"] is True


def test_key_vault_is_rbac_mode_recoverable_and_secrets_are_typed() -> None:
    vault = resource("app/keyvault.bicep", "vault")["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert "accessPolicies" not in vault
    secrets = resources_of_type("app/keyvault.bicep", "Microsoft.KeyVault/vaults/secrets")
    assert set(secrets) == {"teamsSecret", "smtpSecret"}
    for name, secret in secrets.items():
        assert secret["properties"]["contentType"], f"{name} needs a contentType (CKV_AZURE_114)"
    params = parse("main.bicep")["parameters"]
    for name in ("teamsWebhookUrl", "smtpPassword"):
        assert {"type": "secure"} in params[name]["decorators"], f"{name} must be @secure()"


ROLE_IDS = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
}


def test_identity_gets_the_data_roles_and_no_owner_or_contributor() -> None:
    roles = variable("app/rbac.bicep", "roles")
    assert sorted(roles.values()) == sorted(ROLE_IDS)
    text = "\n".join(p.read_text(encoding="utf-8") for p in bicep_files())
    for broad in (
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "4d97b98b-1d4f-4787-a291-c67834d212e7",
    ):
        assert broad not in text, f"Owner/Contributor/Network Contributor ({broad}) must not be granted"


def test_custom_role_loads_the_tested_action_list_and_is_assigned_at_subscription_scope() -> None:
    doc = parse("app/remediator-role.bicep")
    assert doc["globals"]["scope"]["value"] == "subscription"
    spec = variable("app/remediator-role.bicep", "spec")
    assert spec["function"]["type"] == "load_json_content"
    assert spec["function"]["parameters"]["file_path"] == "./remediator-role-actions.json"
    role = resource("app/remediator-role.bicep", "role")["properties"]
    assert role["type"] == "CustomRole"
    assert role["assignableScopes"] != []
    assert role["permissions"][0]["actions"] == "actions"
    assignment = resource("app/remediator-role.bicep", "assignment")["properties"]
    assert assignment["principalType"] == "ServicePrincipal"
    # Repair actions are opt-in and off by default.
    assert parse("main.bicep")["parameters"]["enableServiceEndpointRepair"]["default"] is False
    assert not [a for a in role_actions() if a.endswith("/subnets/write")]


def test_evidence_reader_is_log_analytics_reader_and_optional() -> None:
    evidence = resource("app/evidence.bicep", "reader")
    assert variable("app/evidence.bicep", "logAnalyticsReader") == "73c42c96-874c-492b-b04d-ab87d138a893"
    assert evidence["properties"]["principalType"] == "ServicePrincipal"
    assert parse("app/evidence.bicep")["resources"]["reader"]["config"]["condition"] == "grantReader"


def test_acs_email_uses_an_azure_managed_domain_linked_to_the_service() -> None:
    domain = resource("app/email.bicep", "domain")
    assert domain["name"] == "AzureManagedDomain"
    assert domain["properties"]["domainManagement"] == "AzureManaged"
    acs = resource("app/email.bicep", "communication")
    linked = acs["properties"]["linkedDomains"]
    assert linked == [
        {"operator": {"type": "property_accessor", "operands": {"operand_1": "domain", "operand_2": "id"}}}
    ]
    actions = json.loads((INFRA / "app" / "email-sender-role-actions.json").read_text(encoding="utf-8"))["actions"]
    assert not [a for a in actions if "*" in a]
    assert parse("main.bicep")["parameters"]["enableAcsEmail"]["default"] is False


def main_parameters() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    params: dict[str, Any] = doc["parameters"]
    return params


def test_parameter_file_maps_the_azd_environment_onto_declared_parameters() -> None:
    declared = parse("main.bicep")["parameters"]
    mapped = main_parameters()
    assert set(mapped) <= set(declared), f"unknown parameters: {set(mapped) - set(declared)}"
    required = {name for name, p in declared.items() if p["default"] is None}
    assert required <= set(mapped), f"required parameters not mapped: {required - set(mapped)}"
    assert mapped["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert mapped["location"]["value"] == "${AZURE_LOCATION}"
    assert mapped["remediationMode"]["value"] == "${REMEDIATION_MODE=audit}"
    # Every parameter is reachable from `azd env set`, and defaults agree with Bicep.
    for name, entry in mapped.items():
        match = re.fullmatch(r"\$\{([A-Z0-9_]+)(?:=(.*))?\}", entry["value"])
        assert match, f"{name} is not mapped from an azd environment variable"
        if match.group(2) is not None:
            default = declared[name]["default"]
            expected = str(default).lower() if isinstance(default, bool) else str(default)
            assert match.group(2) == expected, (
                f"{name}: parameter file default {match.group(2)!r} != Bicep {expected!r}"
            )


@pytest.mark.parametrize(("hook", "value"), [("postdeploy.sh", '"'), ("postdeploy.ps1", "$")])
def test_postdeploy_passes_exactly_the_event_grid_parameters(hook: str, value: str) -> None:
    """Both the POSIX and the Windows hook deploy eventgrid.bicep with the same parameters."""
    declared = parse("eventgrid.bicep")["parameters"]
    script = (ROOT / "scripts" / hook).read_text(encoding="utf-8")
    block = script[script.index("--parameters") : script.index("--output none", script.index("--parameters"))]
    passed = set(re.findall(r"([a-zA-Z]+)=" + re.escape(value), block))
    assert passed <= set(declared), f"{hook} passes unknown parameters: {passed - set(declared)}"
    required = {name for name, p in declared.items() if p["default"] is None}
    assert required <= passed, f"{hook} does not pass: {required - passed}"


def test_azure_yaml_deploys_the_function_and_runs_the_hooks() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    assert re.search(r"services:\n  api:\n    project: \.\n    language: python\n    host: function\n", text)
    for hook in ("postdeploy.sh", "predown.sh"):
        assert f"./scripts/{hook}" in text
        assert (ROOT / "scripts" / hook).stat().st_mode & 0o111, f"scripts/{hook} must be executable"
    for hook in ("postdeploy", "predown"):  # Windows developers run azd from PowerShell
        windows = re.search(rf"  {hook}:\n(?:    .*\n)*?    windows:\n      shell: pwsh\n      run: ([^\n]+)\n", text)
        assert windows, f"azure.yaml has no Windows (pwsh) {hook} hook"
        assert windows.group(1) == f"./scripts/{hook}.ps1", hook
        assert (ROOT / "scripts" / f"{hook}.ps1").is_file()


def test_http_functions_can_sit_behind_entra_authentication_that_spares_event_grid() -> None:
    """App Service authentication (Entra ID) when entraAuthClientId is set: every HTTP call needs a
    token (401 otherwise) and the platform sets the principal headers; HTTP_AUTH tells the code so.
    Event Grid's delivery path is excluded: Event Grid cannot present an Entra token."""
    auth = parse("app/api.bicep")["resources"]["auth"]["config"]
    assert auth["condition"]["operator"]["type"] == "not"  # deployed only with a client id
    props = resource("app/api.bicep", "auth")["properties"]
    assert resource("app/api.bicep", "auth")["name"] == "authsettingsV2"
    assert props["platform"]["enabled"] is True
    validation = props["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "Return401"
    assert validation["excludedPaths"] == ["/runtime/webhooks/eventgrid"]
    entra = props["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True
    assert entra["registration"]["clientId"] == "entraAuthClientId"
    api = module("main.bicep", "api")["params"]
    assert api["entraAuthClientId"] == "entraAuthClientId"
    http_auth = variable("main.bicep", "remediationAppSettings")["HTTP_AUTH"]["operator"]["operands"]
    assert (http_auth["true_value"], http_auth["false_value"]) == ("key", "entra")
    assert parse("main.bicep")["parameters"]["entraAuthClientId"]["default"] == ""
