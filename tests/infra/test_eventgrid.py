"""The Event Grid wiring points at a function that exists and delivers what the code handles."""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import pytest

from remediation.events import is_relevant, parse_event
from tests.infra.bicep import ROOT, param_default, parse, resource, variable

FUNCTION_APP = ROOT / "function_app.py"
POSTDEPLOY = ROOT / "scripts" / "postdeploy.sh"
SAMPLE_EVENT = ROOT / "reference" / "eventgrid" / "resource_write_success.json"
SUBSCRIPTION = "app/eventgrid-subscription.bicep"

# The functions the deployment was designed for; used only while
# function_app.py declares none (it is written in parallel with the infra).
DESIGNED_FUNCTIONS = {
    "on_nsg_change": "event_grid_trigger",
    "sweep": "timer_trigger",
    "reconcile": "route",
    "status": "route",
}


def declared_functions(path: Path = FUNCTION_APP) -> dict[str, str]:
    """Function name -> trigger decorator, from ``@app.<trigger>(...)`` and ``@app.function_name(...)``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        name, trigger = node.name, ""
        for deco in node.decorator_list:
            if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)):
                continue
            if deco.func.attr == "function_name":
                arg = deco.args[0] if deco.args else next(k.value for k in deco.keywords if k.arg == "name")
                assert isinstance(arg, ast.Constant), f"function_name of {node.name} must be a literal"
                name = str(arg.value)
            elif deco.func.attr.endswith("_trigger") or deco.func.attr == "route":
                trigger = deco.func.attr
        if trigger:
            found[name] = trigger
    return found


def functions() -> dict[str, str]:
    return declared_functions() or DESIGNED_FUNCTIONS


def test_declared_functions_reads_names_and_triggers(tmp_path: Path) -> None:
    source = tmp_path / "function_app.py"
    source.write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        '@app.function_name("on_nsg_change")\n'
        "@app.event_grid_trigger(arg_name='event')\n"
        "def handler(event): ...\n"
        '@app.timer_trigger(schedule="%SWEEP_SCHEDULE%", arg_name="t")\n'
        "def sweep(t): ...\n"
        "def helper(): ...\n",
        encoding="utf-8",
    )
    assert declared_functions(source) == {"on_nsg_change": "event_grid_trigger", "sweep": "timer_trigger"}


def test_event_subscription_targets_an_event_grid_function_in_function_app_py() -> None:
    target = param_default("eventgrid.bicep", "functionName")
    assert functions().get(target) == "event_grid_trigger", f"{target} is not an Event Grid trigger in function_app.py"
    # The hook waits for, and deploys with, the same function.
    assert re.search(
        r'FUNCTION_NAME="\$\{EVENTGRID_FUNCTION_NAME:-' + re.escape(target) + r'\}"', POSTDEPLOY.read_text()
    )
    # ... and the destination is that function of the app.
    destination = variable("eventgrid.bicep", "functionResourceId")
    assert destination.endswith("/providers/Microsoft.Web/sites/${functionAppName}/functions/${functionName}")


def test_app_settings_named_in_trigger_bindings_are_set_in_bicep() -> None:
    source = FUNCTION_APP.read_text(encoding="utf-8")
    referenced = set(re.findall(r'"%([A-Za-z0-9_]+)%"', source))
    if declared_functions():
        assert "SWEEP_SCHEDULE" in referenced
    settings = variable("main.bicep", "remediationAppSettings")
    assert referenced <= set(settings), f"binding expressions without an app setting: {referenced - set(settings)}"


def event_with(operation: str, event_type: str) -> dict[str, object]:
    event: dict[str, object] = copy.deepcopy(json.loads(SAMPLE_EVENT.read_text(encoding="utf-8")))
    resource_type = "/".join(operation.split("/")[1:-1])
    names = "/".join(f"{t}/x{i}" for i, t in enumerate(resource_type.split("/")))
    uri = f"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Network/{names}"
    event.update(subject=uri, eventType=event_type, topic="/subscriptions/00000000-0000-0000-0000-000000000001")
    data = event["data"]
    assert isinstance(data, dict)
    data.update(
        operationName=operation,
        resourceUri=uri,
        resourceProvider="Microsoft.Network",
        subscriptionId="00000000-0000-0000-0000-000000000001",
    )
    data["authorization"] = {"scope": uri, "action": operation, "evidence": {"role": "Owner"}}
    return event


def test_filtered_operations_are_exactly_those_the_code_acts_on() -> None:
    operations = variable(SUBSCRIPTION, "operationNames")
    types = resource(SUBSCRIPTION, "subscription_")["properties"]["filter"]["includedEventTypes"]
    assert sorted(types) == ["Microsoft.Resources.ResourceDeleteSuccess", "Microsoft.Resources.ResourceWriteSuccess"]
    for operation in operations:
        for event_type in types:
            assert is_relevant(parse_event(event_with(operation, event_type))), operation
    # Nothing relevant is filtered out: write and delete of each watched type.
    kinds = {op.rsplit("/", 1)[0] for op in operations}
    assert kinds == {
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Network/networkSecurityGroups/securityRules",
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Network/virtualNetworks/subnets",
        "Microsoft.Network/networkInterfaces",
        "Microsoft.Network/routeTables",
        "Microsoft.Network/routeTables/routes",
        "Microsoft.Network/azureFirewalls",
        "Microsoft.Network/firewallPolicies",
        "Microsoft.Network/firewallPolicies/ruleCollectionGroups",
        "Microsoft.Network/ipGroups",
    }
    assert sorted(operations) == sorted(f"{k}/{verb}" for k in kinds for verb in ("write", "delete"))
    assert len(operations) <= 25, "Event Grid allows at most 25 values in one StringIn filter"


@pytest.mark.parametrize(
    "operation",
    ["Microsoft.Network/publicIPAddresses/write", "Microsoft.Network/natGateways/write"],
)
def test_operations_left_out_of_the_filter_are_irrelevant_to_the_code(operation: str) -> None:
    assert not is_relevant(parse_event(event_with(operation, "Microsoft.Resources.ResourceWriteSuccess")))


def test_event_subscription_delivery_retry_and_dead_letter() -> None:
    props = resource(SUBSCRIPTION, "subscription_")["properties"]
    assert props["destination"]["endpointType"] == "AzureFunction"
    assert props["destination"]["properties"]["resourceId"] == "functionResourceId"
    assert props["destination"]["properties"]["maxEventsPerBatch"] == 1
    advanced = {f["key"]: f for f in props["filter"]["advancedFilters"]}
    assert advanced["data.operationName"]["operatorType"] == "StringIn"
    assert props["retryPolicy"] == {
        "maxDeliveryAttempts": "maxDeliveryAttempts",
        "eventTimeToLiveInMinutes": "eventTimeToLiveInMinutes",
    }
    assert param_default("eventgrid.bicep", "maxDeliveryAttempts") == 30
    assert param_default("eventgrid.bicep", "eventTimeToLiveInMinutes") == 1440
    dead_letter = props["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"
    # The container exists: main.bicep creates it with the same name the hook passes.
    storage = parse("main.bicep")["modules"]["storage"]["config"]["params"]
    containers = [c["name"] for c in storage["blobServices"]["containers"]]
    assert "deadLetterContainerName" in containers
    assert variable("main.bicep", "deadLetterContainerName") == param_default(
        "eventgrid.bicep", "deadLetterContainerName"
    )


def test_system_topic_is_the_subscriptions_global_topic_with_an_identity() -> None:
    topic = resource("app/eventgrid-topic.bicep", "created")
    assert topic["location"] == "global"
    assert topic["properties"]["topicType"] == "Microsoft.Resources.Subscriptions"
    assert topic["identity"] == {"type": "SystemAssigned"}
    reused = parse("app/eventgrid-topic.bicep")["resources"]["reused"]
    assert reused["existing"] is True


def test_event_grid_is_not_part_of_the_main_deployment() -> None:
    # Azure rejects an AzureFunction destination that does not exist yet.
    main = parse("main.bicep")
    assert not [r for r in main["resources"].values() if r["type"].startswith("Microsoft.EventGrid/")]
    assert not [m for m in main["modules"].values() if "eventgrid" in m["detail"]["path"]]
