#!/bin/sh
# azd postdeploy hook: subscribe on_nsg_change to the subscription's resource
# events. It runs after `azd deploy` because Azure validates, when the event
# subscription is created, that the AzureFunction destination exists.
#
# Also usable without azd: export the variables below (main.bicep outputs) and
# run it. Optional: EVENTGRID_SYSTEM_TOPIC_NAME and
# EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP name an existing system topic to reuse;
# without them the script finds the subscription's topic itself (there can be
# only one) or creates one.
set -eu

fail() {
    echo "postdeploy: $*" >&2
    exit 1
}

for name in AZURE_SUBSCRIPTION_ID AZURE_LOCATION AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME AZURE_STORAGE_ACCOUNT_NAME; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || fail "$name is not set (run 'azd provision' first, or export the main.bicep outputs)"
done
command -v az >/dev/null 2>&1 || fail "the Azure CLI (az) is required"

FUNCTION_NAME="${EVENTGRID_FUNCTION_NAME:-on_nsg_change}"
DEADLETTER_CONTAINER="${EVENTGRID_DEADLETTER_CONTAINER:-eventgrid-deadletter}"
TEMPLATE="$(dirname "$0")/../infra/eventgrid.bicep"

az account set --subscription "$AZURE_SUBSCRIPTION_ID"

# 1. Flex Consumption indexes the functions a little after the package lands.
echo "postdeploy: waiting for function $FUNCTION_NAME on $AZURE_FUNCTION_APP_NAME"
tries=0
until az functionapp function show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
    --function-name "$FUNCTION_NAME" --query name --output tsv >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || fail "function $FUNCTION_NAME did not appear on $AZURE_FUNCTION_APP_NAME within 5 minutes; check 'azd deploy' output and function_app.py"
    sleep 10
done

# 2. The subscription's system topic: reuse the one that exists, or create one.
create=true
topic_name="${EVENTGRID_SYSTEM_TOPIC_NAME:-}"
topic_rg="${EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP:-}"
if [ -z "$topic_name" ]; then
    found="$(az eventgrid system-topic list \
        --query "[?topicType=='Microsoft.Resources.Subscriptions' || topicType=='microsoft.resources.subscriptions'] | [0].[name, resourceGroup, tags.application]" \
        --output tsv)"
    if [ -n "$found" ]; then
        topic_name="$(printf '%s' "$found" | cut -f1)"
        topic_rg="$(printf '%s' "$found" | cut -f2)"
        owner="$(printf '%s' "$found" | cut -f3)"
        # Ours from an earlier run: keep managing it. Anyone else's: reuse as is.
        [ "$owner" = "cyclecloud-lockdown-guard" ] || create=false
    fi
elif [ -z "$topic_rg" ]; then
    fail "EVENTGRID_SYSTEM_TOPIC_NAME is set but EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP is not"
else
    create=false
fi

if [ "$create" = false ]; then
    echo "postdeploy: reusing system topic $topic_name in $topic_rg"
    identity="$(az eventgrid system-topic show --name "$topic_name" --resource-group "$topic_rg" --query identity.type --output tsv 2>/dev/null || true)"
    case "$identity" in
        *SystemAssigned*) ;;
        "" | None | none)
            # Dead-lettering authenticates as the topic's system identity; adding
            # one changes nothing for the topic's other subscriptions.
            echo "postdeploy: enabling the system-assigned identity on $topic_name"
            topic_id="$(az eventgrid system-topic show --name "$topic_name" --resource-group "$topic_rg" --query id --output tsv)"
            az resource update --ids "$topic_id" --set 'identity={"type":"SystemAssigned"}' --output none
            ;;
        *)
            fail "system topic $topic_name has identity '$identity' without SystemAssigned; add a system-assigned identity to it (portal: Identity > System assigned) and rerun"
            ;;
    esac
fi

# 3. The event subscription (and the topic, when we own it). Role assignments
# take a minute to propagate, so a failed first attempt is retried.
attempt=1
while :; do
    if az deployment sub create \
        --name "lockdown-eventgrid-${AZURE_ENV_NAME:-$AZURE_RESOURCE_GROUP}" \
        --location "$AZURE_LOCATION" \
        --template-file "$TEMPLATE" \
        --parameters resourceGroupName="$AZURE_RESOURCE_GROUP" \
        functionAppName="$AZURE_FUNCTION_APP_NAME" \
        storageAccountName="$AZURE_STORAGE_ACCOUNT_NAME" \
        deadLetterContainerName="$DEADLETTER_CONTAINER" \
        functionName="$FUNCTION_NAME" \
        systemTopicName="$topic_name" \
        systemTopicResourceGroupName="$topic_rg" \
        createSystemTopic="$create" \
        --output none; then
        break
    fi
    attempt=$((attempt + 1))
    [ "$attempt" -le 3 ] || fail "the Event Grid deployment failed 3 times; see the errors above"
    echo "postdeploy: retrying in 60 s (role assignments may still be propagating)"
    sleep 60
done

echo "postdeploy: on_nsg_change now receives NSG, rule, subnet and NIC changes of subscription $AZURE_SUBSCRIPTION_ID"
