// CycleCloud Lockdown Guard: everything one subscription needs, in one deployment.
//
// Layout follows the azd Python Functions quickstarts (Azure-Samples
// functions-quickstart-python-http-azd): subscription scope, a resource group,
// Azure Verified Modules for the standard pieces, small local modules in app/.
// The Event Grid subscription is NOT here: Azure refuses it until the target
// function exists, so scripts/postdeploy.sh deploys eventgrid.bicep after
// `azd deploy` has published the code (see docs/deploy.md).
targetScope = 'subscription'

// ---------- environment ----------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Region of the resource group and the Flex Consumption Function App.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create; default rg-<environmentName>.')
param resourceGroupName string = ''

// ---------- behaviour ----------

// audit first: the first deployment only reports what it would restore, so
// operators can check the baseline against their network before the Function
// starts rewriting NSGs. Switch with REMEDIATION_MODE=enforce (docs/deploy.md).
@allowed([
  'audit'
  'enforce'
])
@description('audit: alert only. enforce: restore missing baseline rules.')
param remediationMode string = 'audit'

@description('NCRONTAB schedule of the sweep timer (six fields, UTC).')
param sweepSchedule string = '0 */15 * * * *'

@description('NCRONTAB schedule of the timer that handles events a drain left pending (six fields, UTC).')
param drainSchedule string = '30 * * * * *'

@description('Seconds NIC events wait to be read together (a scale-up); NSG and subnet events never wait.')
param eventCoalesceSeconds string = '10'

@description('Tag that marks the NSGs to guard; values cyclecloud, cluster or "cyclecloud,cluster".')
param lockdownTag string = 'cyclecloud-lockdown'

@description('Optional path (inside the deployed package) of an operator baseline YAML.')
param baselinePath string = ''

@description('Optional path (inside the deployed package) of a service-tags JSON file.')
param serviceTagsPath string = ''

@description('Region whose Service Tags API answer gives exact service-tag addresses (e.g. westeurope); empty: off. Not together with serviceTagsPath.')
param serviceTagsLocation string = ''

@minValue(1)
@description('Hours before the Service Tags API answer is fetched again.')
param serviceTagsRefreshHours int = 24

@description('Optional subnet service-endpoint repair: sets SERVICE_ENDPOINT_REPAIR and grants what it needs (subnet write and the joins a subnet PUT implies).')
param enableServiceEndpointRepair bool = false

// ---------- alert channels ----------

@secure()
@description('Teams Workflows webhook URL; stored in Key Vault. Empty: no Teams alerts.')
param teamsWebhookUrl string = ''

@description('Comma-separated alert e-mail recipients. Empty: no e-mail alerts.')
param alertEmailTo string = ''

@description('Sender address. Empty with ACS e-mail enabled: DoNotReply@ the Azure-managed domain.')
param alertEmailFrom string = ''

@description('Create Azure Communication Services Email (Azure-managed domain) and send through it with the managed identity.')
param enableAcsEmail bool = false

@allowed([
  'Africa'
  'Asia Pacific'
  'Australia'
  'Brazil'
  'Canada'
  'Europe'
  'France'
  'Germany'
  'India'
  'Japan'
  'Korea'
  'Norway'
  'Switzerland'
  'UAE'
  'UK'
  'United States'
])
@description('Where Azure Communication Services stores data at rest.')
param acsDataLocation string = 'Europe'

@description('SMTP relay host (alternative to ACS). Empty: no SMTP.')
param smtpHost string = ''

@minValue(1)
@maxValue(65535)
param smtpPort int = 587

param smtpUsername string = ''

@secure()
@description('SMTP password; stored in Key Vault.')
param smtpPassword string = ''

param smtpStartTls bool = true

@minValue(1)
@description('Hours between reminders for a finding that persists.')
param alertReminderHours int = 24

@minValue(1)
@maxValue(3650)
@description('Days processed Event Grid event ids and resolved alert states are kept; the sweep prunes older ones (Event Grid retries for at most 24 hours).')
param stateRetentionDays int = 7

@allowed([
  'critical'
  'high'
  'medium'
  'low'
  'info'
])
param alertMinSeverityTeams string = 'info'

@allowed([
  'critical'
  'high'
  'medium'
  'low'
  'info'
])
param alertMinSeverityEmail string = 'high'

// ---------- evidence ----------

@description('Resource id of a Log Analytics workspace that already receives the Activity Log. Empty: use the workspace deployed here.')
param evidenceWorkspaceResourceId string = ''

@description('Grant the identity Log Analytics Reader on the evidence workspace (who changed an NSG, denied flows).')
param grantEvidenceReader bool = true

@description('Send the subscription Activity Log to the workspace deployed here (only when evidenceWorkspaceResourceId is empty).')
param exportActivityLog bool = true

@description('Logs query endpoint for sovereign clouds; empty means the public cloud default.')
param logsEndpoint string = ''

@description('Client id of a Microsoft Entra app registration for the HTTP functions: App Service authentication then requires an Entra token for it (besides the function key) and records the real caller. Empty: the function key alone, and the caller is recorded as the key.')
param entraAuthClientId string = ''

@description('Object ids allowed to call the HTTP functions when entraAuthClientId is set (empty: anyone in the tenant holding a token for the app).')
param entraAllowedPrincipalIds array = []

// ---------- names ----------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'cyclecloud-lockdown-guard'
}
var rgName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var functionAppName = 'func-lockdown-${resourceToken}'
var identityName = 'id-lockdown-${resourceToken}'
var storageAccountName = 'stlock${resourceToken}'
var keyVaultName = 'kv-lock-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var deadLetterContainerName = 'eventgrid-deadletter'
var stateTablePrefix = 'lockdown'
// The state tables of remediation/state.py (alert state and its history,
// processed events, audit trail, last sweep status, remembered subnet-NSG
// attachments); the code also creates them if missing, but a deployment that
// has them is ready before first use.
var stateTables = [
  '${stateTablePrefix}alerts'
  '${stateTablePrefix}alerthistory'
  '${stateTablePrefix}events'
  '${stateTablePrefix}audit'
  '${stateTablePrefix}status'
  '${stateTablePrefix}attachments'
  '${stateTablePrefix}topology'
  '${stateTablePrefix}pending'
]
// environment().resourceManager ends in '/'; the code compares endpoints and
// builds token scopes from this value, so hand it over without the slash.
var resourceManager = environment().resourceManager
var armEndpoint = endsWith(resourceManager, '/') ? substring(resourceManager, 0, length(resourceManager) - 1) : resourceManager
var storageSuffix = environment().suffixes.storage
var useOwnWorkspace = empty(evidenceWorkspaceResourceId)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: rgName
  location: location
  tags: tags
}

// ---------- identity ----------

// One user-assigned identity runs everything: storage, Key Vault references,
// Application Insights, ARM (custom role) and ACS. It outlives app re-creation,
// so role assignments survive a redeploy.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: identityName
    location: location
    tags: tags
  }
}

// ---------- monitoring ----------

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.11.1' = {
  name: 'loganalytics'
  scope: rg
  params: {
    name: logAnalyticsName
    location: location
    tags: tags
    dataRetention: 30
  }
}

module appInsights 'br/public:avm/res/insights/component:0.6.0' = {
  name: 'appinsights'
  scope: rg
  params: {
    name: 'appi-lockdown-${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    // Entra-only ingestion: the Function authenticates with the identity
    // (APPLICATIONINSIGHTS_AUTHENTICATION_STRING) and Monitoring Metrics Publisher.
    disableLocalAuth: true
    kind: 'web'
    applicationType: 'web'
  }
}

// Who changed an NSG is in the Activity Log; send it to our workspace unless
// the operator points us at a workspace that already has it.
resource activityLogExport 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (useOwnWorkspace && exportActivityLog) {
  name: 'lockdown-activity-${resourceToken}'
  properties: {
    workspaceId: logAnalytics.outputs.resourceId
    logs: [
      {
        category: 'Administrative'
        enabled: true
      }
      {
        category: 'Security'
        enabled: true
      }
      {
        category: 'Policy'
        enabled: true
      }
    ]
  }
}

// ---------- storage ----------

module storage 'br/public:avm/res/storage/storage-account:0.14.3' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageAccountName
    location: location
    tags: tags
    kind: 'StorageV2'
    skuName: 'Standard_LRS'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // identity only: AzureWebJobsStorage__credential=managedidentity
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    dnsEndpointType: 'Standard'
    publicNetworkAccess: 'Enabled' // Flex Consumption without VNet integration reaches storage publicly
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        {
          name: deploymentContainerName
        }
        {
          name: deadLetterContainerName
        }
      ]
    }
    tableServices: {
      tables: [for table in stateTables: {
        name: table
      }]
    }
  }
}

// ---------- secrets ----------

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    teamsWebhookUrl: teamsWebhookUrl
    smtpPassword: smtpPassword
  }
}

// ---------- e-mail (optional) ----------

module email 'app/email.bicep' = if (enableAcsEmail) {
  name: 'email'
  scope: rg
  params: {
    resourceToken: resourceToken
    tags: tags
    dataLocation: acsDataLocation
    principalId: identity.outputs.principalId
  }
}

// ---------- evidence workspace ----------

// The own workspace's id is spelled out (not taken from the module output) so
// the module's scope is known when the deployment starts.
var logAnalyticsName = 'log-lockdown-${resourceToken}'
var ownWorkspaceId = '${subscription().id}/resourceGroups/${rgName}/providers/Microsoft.OperationalInsights/workspaces/${logAnalyticsName}'
var evidenceId = useOwnWorkspace ? ownWorkspaceId : evidenceWorkspaceResourceId
var evidenceParts = split(evidenceId, '/')

module evidence 'app/evidence.bicep' = {
  name: 'evidence'
  scope: resourceGroup(evidenceParts[2], evidenceParts[4])
  params: {
    workspaceName: last(evidenceParts)
    principalId: identity.outputs.principalId
    grantReader: grantEvidenceReader
  }
  dependsOn: [
    logAnalytics
  ]
}

// ---------- the Function App ----------

module appServicePlan 'br/public:avm/res/web/serverfarm:0.5.0' = {
  name: 'appserviceplan'
  scope: rg
  params: {
    name: 'plan-lockdown-${resourceToken}'
    location: location
    tags: tags
    skuName: 'FC1' // Flex Consumption
    reserved: true // Linux
  }
}

var teamsSetting = empty(teamsWebhookUrl) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.teamsWebhookSecretUri})'
var smtpPasswordSetting = empty(smtpPassword) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.smtpPasswordSecretUri})'

// Every setting remediation/settings.py reads (SETTING_NAMES), each present even
// when empty; tests/infra/test_app_settings.py holds this list to the code.
var remediationAppSettings = {
  AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  AZURE_CLIENT_ID: identity.outputs.clientId
  REMEDIATOR_PRINCIPAL_ID: identity.outputs.principalId
  ARM_ENDPOINT: armEndpoint
  REMEDIATION_MODE: remediationMode
  SWEEP_SCHEDULE: sweepSchedule
  DRAIN_SCHEDULE: drainSchedule
  EVENT_COALESCE_SECONDS: eventCoalesceSeconds
  LOCKDOWN_TAG: lockdownTag
  BASELINE_PATH: baselinePath
  SERVICE_TAGS_PATH: serviceTagsPath
  SERVICE_TAGS_LOCATION: serviceTagsLocation
  SERVICE_TAGS_REFRESH_HOURS: string(serviceTagsRefreshHours)
  SERVICE_ENDPOINT_REPAIR: enableServiceEndpointRepair ? 'true' : 'false'
  TEAMS_WEBHOOK_URL: teamsSetting
  ALERT_EMAIL_TO: alertEmailTo
  ALERT_EMAIL_FROM: empty(alertEmailFrom) ? (enableAcsEmail ? email.outputs.senderAddress : '') : alertEmailFrom
  ACS_ENDPOINT: enableAcsEmail ? email.outputs.endpoint : ''
  SMTP_HOST: smtpHost
  SMTP_PORT: string(smtpPort)
  SMTP_USERNAME: smtpUsername
  SMTP_PASSWORD: smtpPasswordSetting
  SMTP_STARTTLS: smtpStartTls ? 'true' : 'false'
  ALERT_REMINDER_HOURS: string(alertReminderHours)
  ALERT_MIN_SEVERITY_TEAMS: alertMinSeverityTeams
  ALERT_MIN_SEVERITY_EMAIL: alertMinSeverityEmail
  STATE_TABLE_ENDPOINT: 'https://${storageAccountName}.table.${storageSuffix}/'
  STATE_CONNECTION_STRING: '' // Azurite and local runs only; in Azure the identity is used
  STATE_TABLE_PREFIX: stateTablePrefix
  STATE_RETENTION_DAYS: string(stateRetentionDays)
  LOG_ANALYTICS_WORKSPACE_ID: evidence.outputs.customerId
  LOGS_ENDPOINT: logsEndpoint
  // The code trusts X-MS-CLIENT-PRINCIPAL-* only when App Service authentication sets them.
  HTTP_AUTH: empty(entraAuthClientId) ? 'key' : 'entra'
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    serviceName: 'api'
    appServicePlanId: appServicePlan.outputs.resourceId
    applicationInsightsName: appInsights.outputs.name
    storageAccountName: storage.outputs.name
    deploymentStorageContainerName: deploymentContainerName
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    runtimeName: 'python'
    runtimeVersion: '3.11'
    appSettings: remediationAppSettings
    entraAuthClientId: entraAuthClientId
    entraAllowedPrincipalIds: entraAllowedPrincipalIds
  }
}

// ---------- rights ----------

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    appInsightsName: appInsights.outputs.name
    keyVaultName: keyVault.outputs.name
  }
}

// Network rights at subscription scope: the custom role instead of Network Contributor.
module remediatorRole 'app/remediator-role.bicep' = {
  name: 'remediator-role'
  params: {
    principalId: identity.outputs.principalId
    enableServiceEndpointRepair: enableServiceEndpointRepair
  }
}

// ---------- outputs (azd writes them to .azure/<env>/.env; postdeploy.sh reads them) ----------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_SUBSCRIPTION_ID string = subscription().subscriptionId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
output REMEDIATOR_ROLE_DEFINITION_ID string = remediatorRole.outputs.roleDefinitionId
output REMEDIATION_MODE string = remediationMode
output ACTIVITY_LOG_DIAGNOSTIC_SETTING string = (useOwnWorkspace && exportActivityLog) ? activityLogExport.name : ''
