# azd predown hook (Windows PowerShell / pwsh): the same steps as predown.sh.
# Remove what lives outside the resource group before `azd down` deletes the
# group: the identity's role assignments (subscription scope, evidence
# workspace), the custom roles when no one else uses them, the Event Grid
# subscription on a reused system topic, and the Activity Log export. A system
# topic created by postdeploy sits in the resource group and goes with it.
# Safe to rerun; each step says what it removes.
$ErrorActionPreference = 'Stop'

function Fail([string]$message) {
    Write-Error "predown: $message"
    exit 1
}

foreach ($name in 'AZURE_SUBSCRIPTION_ID', 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME') {
    if (-not [Environment]::GetEnvironmentVariable($name)) { Fail "$name is not set" }
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { Fail 'the Azure CLI (az) is required' }
az account set --subscription $env:AZURE_SUBSCRIPTION_ID
if ($LASTEXITCODE -ne 0) { Fail "cannot select subscription $env:AZURE_SUBSCRIPTION_ID" }
$sub = "/subscriptions/$env:AZURE_SUBSCRIPTION_ID"

# Event subscription on a system topic outside our resource group.
$found = az eventgrid system-topic list `
    --query "[?topicType=='Microsoft.Resources.Subscriptions' || topicType=='microsoft.resources.subscriptions'] | [0].[name, resourceGroup]" `
    --output tsv
if ($found) {
    $fields = "$found".Split("`t")
    Write-Host "predown: deleting event subscription lockdown-$env:AZURE_FUNCTION_APP_NAME on $($fields[0])"
    az eventgrid system-topic event-subscription delete --name "lockdown-$env:AZURE_FUNCTION_APP_NAME" `
        --system-topic-name $fields[0] --resource-group $fields[1] --yes --output none 2>$null
}

# Every role assignment of the identity, wherever it is (the identity is deleted next).
if ($env:AZURE_IDENTITY_PRINCIPAL_ID) {
    $ids = az role assignment list --assignee $env:AZURE_IDENTITY_PRINCIPAL_ID --all --query "[].id" --output tsv
    foreach ($id in @($ids | Where-Object { $_ })) {
        Write-Host "predown: deleting role assignment $id"
        az role assignment delete --ids $id --output none
        if ($LASTEXITCODE -ne 0) { Fail "could not delete role assignment $id" }
    }
}

# Custom roles no longer assigned to anyone (other environments may share the
# remediator role). The e-mail sender role is assignable only in our group.
function Remove-UnusedRoles([string]$scope, [string]$prefix) {
    $roles = az role definition list --custom-role-only true --scope $scope `
        --query "[?starts_with(roleName, '$prefix')].name" --output tsv
    foreach ($role in @($roles | Where-Object { $_ })) {
        $inUse = az role assignment list --role $role --all --query "length(@)" --output tsv
        if ("$inUse" -eq '0') {
            Write-Host "predown: deleting custom role $role ($prefix...)"
            az role definition delete --name $role --scope $scope --output none
        } else {
            Write-Host "predown: keeping custom role $role ($inUse assignments left)"
        }
    }
}
Remove-UnusedRoles $sub 'CycleCloud Lockdown Remediator ('
Remove-UnusedRoles "$sub/resourceGroups/$env:AZURE_RESOURCE_GROUP" "CycleCloud Lockdown E-mail Sender ($env:AZURE_RESOURCE_GROUP,"

if ($env:ACTIVITY_LOG_DIAGNOSTIC_SETTING) {
    Write-Host "predown: deleting Activity Log export $env:ACTIVITY_LOG_DIAGNOSTIC_SETTING"
    az monitor diagnostic-settings subscription delete --name $env:ACTIVITY_LOG_DIAGNOSTIC_SETTING --yes --output none
}
exit 0
