// The Log Analytics workspace the Function queries for evidence (who changed
// an NSG, which flows were denied): its workspace (customer) id for
// LOG_ANALYTICS_WORKSPACE_ID and, optionally, Log Analytics Reader on it.
param workspaceName string
param principalId string
param grantReader bool = true

var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantReader) {
  name: guid(workspace.id, principalId, logAnalyticsReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output customerId string = workspace.properties.customerId
output resourceId string = workspace.id
