# azd postdeploy hook (Windows PowerShell / pwsh): the same steps as postdeploy.sh.
# Subscribe on_nsg_change to the subscription's resource events. It runs after
# `azd deploy` because Azure validates, when the event subscription is created,
# that the AzureFunction destination exists.
#
# Also usable without azd: set the variables below (main.bicep outputs) and run
# it. Optional: EVENTGRID_SYSTEM_TOPIC_NAME and EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP
# name an existing system topic to reuse; without them the script finds the
# subscription's topic itself (there can be only one) or creates one.
$ErrorActionPreference = 'Stop'

function Fail([string]$message) {
    Write-Error "postdeploy: $message"
    exit 1
}

foreach ($name in 'AZURE_SUBSCRIPTION_ID', 'AZURE_LOCATION', 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_STORAGE_ACCOUNT_NAME') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        Fail "$name is not set (run 'azd provision' first, or set the main.bicep outputs)"
    }
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { Fail 'the Azure CLI (az) is required' }

$functionName = if ($env:EVENTGRID_FUNCTION_NAME) { $env:EVENTGRID_FUNCTION_NAME } else { 'on_nsg_change' }
$deadLetter = if ($env:EVENTGRID_DEADLETTER_CONTAINER) { $env:EVENTGRID_DEADLETTER_CONTAINER } else { 'eventgrid-deadletter' }
$template = Join-Path $PSScriptRoot '..' 'infra' 'eventgrid.bicep'

az account set --subscription $env:AZURE_SUBSCRIPTION_ID
if ($LASTEXITCODE -ne 0) { Fail "cannot select subscription $env:AZURE_SUBSCRIPTION_ID" }

# 1. Flex Consumption indexes the functions a little after the package lands.
Write-Host "postdeploy: waiting for function $functionName on $env:AZURE_FUNCTION_APP_NAME"
$tries = 0
while ($true) {
    az functionapp function show --resource-group $env:AZURE_RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME `
        --function-name $functionName --query name --output tsv *> $null
    if ($LASTEXITCODE -eq 0) { break }
    $tries++
    if ($tries -ge 30) { Fail "function $functionName did not appear on $env:AZURE_FUNCTION_APP_NAME within 5 minutes; check 'azd deploy' output and function_app.py" }
    Start-Sleep -Seconds 10
}

# 2. The subscription's system topic: reuse the one that exists, or create one.
$create = $true
$topicName = "$env:EVENTGRID_SYSTEM_TOPIC_NAME"
$topicRg = "$env:EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP"
if (-not $topicName) {
    $found = az eventgrid system-topic list `
        --query "[?topicType=='Microsoft.Resources.Subscriptions' || topicType=='microsoft.resources.subscriptions'] | [0].[name, resourceGroup, tags.application]" `
        --output tsv
    if ($found) {
        $fields = "$found".Split("`t")
        $topicName = $fields[0]
        $topicRg = $fields[1]
        # Ours from an earlier run: keep managing it. Anyone else's: reuse as is.
        if ($fields.Count -lt 3 -or $fields[2] -ne 'cyclecloud-lockdown-guard') { $create = $false }
    }
} elseif (-not $topicRg) {
    Fail 'EVENTGRID_SYSTEM_TOPIC_NAME is set but EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP is not'
} else {
    $create = $false
}

if (-not $create) {
    Write-Host "postdeploy: reusing system topic $topicName in $topicRg"
    $identity = az eventgrid system-topic show --name $topicName --resource-group $topicRg --query identity.type --output tsv 2>$null
    if ("$identity" -match 'SystemAssigned') {
    } elseif (-not $identity -or "$identity" -in @('None', 'none')) {
        # Dead-lettering authenticates as the topic's system identity; adding
        # one changes nothing for the topic's other subscriptions.
        Write-Host "postdeploy: enabling the system-assigned identity on $topicName"
        $topicId = az eventgrid system-topic show --name $topicName --resource-group $topicRg --query id --output tsv
        az resource update --ids $topicId --set 'identity={"type":"SystemAssigned"}' --output none
        if ($LASTEXITCODE -ne 0) { Fail "could not add a system-assigned identity to $topicName" }
    } else {
        Fail "system topic $topicName has identity '$identity' without SystemAssigned; add a system-assigned identity to it (portal: Identity > System assigned) and rerun"
    }
}

# 3. The event subscription (and the topic, when we own it). Role assignments
# take a minute to propagate, so a failed first attempt is retried.
$deploymentName = if ($env:AZURE_ENV_NAME) { "lockdown-eventgrid-$env:AZURE_ENV_NAME" } else { "lockdown-eventgrid-$env:AZURE_RESOURCE_GROUP" }
$attempt = 1
while ($true) {
    az deployment sub create `
        --name $deploymentName `
        --location $env:AZURE_LOCATION `
        --template-file $template `
        --parameters resourceGroupName=$env:AZURE_RESOURCE_GROUP `
        functionAppName=$env:AZURE_FUNCTION_APP_NAME `
        storageAccountName=$env:AZURE_STORAGE_ACCOUNT_NAME `
        deadLetterContainerName=$deadLetter `
        functionName=$functionName `
        systemTopicName=$topicName `
        systemTopicResourceGroupName=$topicRg `
        createSystemTopic=$($create.ToString().ToLower()) `
        --output none
    if ($LASTEXITCODE -eq 0) { break }
    $attempt++
    if ($attempt -gt 3) { Fail 'the Event Grid deployment failed 3 times; see the errors above' }
    Write-Host 'postdeploy: retrying in 60 s (role assignments may still be propagating)'
    Start-Sleep -Seconds 60
}

Write-Host "postdeploy: on_nsg_change now receives NSG, rule, subnet and NIC changes of subscription $env:AZURE_SUBSCRIPTION_ID"
