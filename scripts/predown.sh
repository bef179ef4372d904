#!/bin/sh
# azd predown hook: remove what lives outside the resource group before
# `azd down` deletes the group: the identity's role assignments (subscription
# scope, evidence workspace), the custom roles when no one else uses them, the
# Event Grid subscription on a reused system topic, and the Activity Log export.
# A system topic created by postdeploy.sh sits in the resource group and goes
# with it. Safe to rerun; each step says what it removes.
set -eu

fail() {
    echo "predown: $*" >&2
    exit 1
}

for name in AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || fail "$name is not set"
done
command -v az >/dev/null 2>&1 || fail "the Azure CLI (az) is required"
az account set --subscription "$AZURE_SUBSCRIPTION_ID"
SUB="/subscriptions/$AZURE_SUBSCRIPTION_ID"

# Event subscription on a system topic outside our resource group.
found="$(az eventgrid system-topic list \
    --query "[?topicType=='Microsoft.Resources.Subscriptions' || topicType=='microsoft.resources.subscriptions'] | [0].[name, resourceGroup]" \
    --output tsv)"
if [ -n "$found" ]; then
    topic_name="$(printf '%s' "$found" | cut -f1)"
    topic_rg="$(printf '%s' "$found" | cut -f2)"
    echo "predown: deleting event subscription lockdown-$AZURE_FUNCTION_APP_NAME on $topic_name"
    az eventgrid system-topic event-subscription delete --name "lockdown-$AZURE_FUNCTION_APP_NAME" \
        --system-topic-name "$topic_name" --resource-group "$topic_rg" --yes --output none 2>/dev/null || true
fi

# Every role assignment of the identity, wherever it is (the identity is deleted next).
if [ -n "${AZURE_IDENTITY_PRINCIPAL_ID:-}" ]; then
    ids="$(az role assignment list --assignee "$AZURE_IDENTITY_PRINCIPAL_ID" --all --query "[].id" --output tsv)"
    for id in $ids; do
        echo "predown: deleting role assignment $id"
        az role assignment delete --ids "$id" --output none
    done
fi

# Custom roles no longer assigned to anyone (other environments may share the
# remediator role). The e-mail sender role is assignable only in our group.
delete_unused_roles() {
    scope="$1"
    prefix="$2"
    roles="$(az role definition list --custom-role-only true --scope "$scope" \
        --query "[?starts_with(roleName, '$prefix')].name" --output tsv)"
    for role in $roles; do
        in_use="$(az role assignment list --role "$role" --all --query "length(@)" --output tsv)"
        if [ "$in_use" = "0" ]; then
            echo "predown: deleting custom role $role ($prefix...)"
            az role definition delete --name "$role" --scope "$scope" --output none || true
        else
            echo "predown: keeping custom role $role ($in_use assignments left)"
        fi
    done
}
delete_unused_roles "$SUB" "CycleCloud Lockdown Remediator ("
delete_unused_roles "$SUB/resourceGroups/$AZURE_RESOURCE_GROUP" "CycleCloud Lockdown E-mail Sender ($AZURE_RESOURCE_GROUP,"

if [ -n "${ACTIVITY_LOG_DIAGNOSTIC_SETTING:-}" ]; then
    echo "predown: deleting Activity Log export $ACTIVITY_LOG_DIAGNOSTIC_SETTING"
    az monitor diagnostic-settings subscription delete --name "$ACTIVITY_LOG_DIAGNOSTIC_SETTING" --yes --output none || true
fi
