// The Flex Consumption Function App (Linux), as in the azd Python Functions
// quickstarts: AVM web/site, user-assigned identity for everything, no keys.
param name string
param location string = resourceGroup().location
param tags object = {}
@description('azd service name; azd deploy finds the app by this tag.')
param serviceName string = 'api'
param appServicePlanId string
param applicationInsightsName string
param storageAccountName string
param deploymentStorageContainerName string
param identityId string
param identityClientId string
param runtimeName string = 'python'
param runtimeVersion string = '3.11'
param instanceMemoryMB int = 2048
@description('One sweep and a handful of events at a time need few instances; a low cap also bounds ARM write bursts.')
param maximumInstanceCount int = 40
@description('The application settings (remediation/settings.py names); merged over the host settings below.')
param appSettings object
@description('Client id of the Microsoft Entra app registration that callers of the HTTP functions get tokens for. Empty: the function key alone guards them.')
param entraAuthClientId string = ''
@description('Object ids of the users, group members or service principals allowed to call the HTTP functions (empty: anyone in the tenant with a token for the app).')
param entraAllowedPrincipalIds array = []

resource stg 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Host settings: identity-based AzureWebJobsStorage (shared keys are disabled on
// the account) and Entra-authenticated Application Insights. Flex Consumption
// rejects FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION; the runtime
// comes from functionAppConfig instead.
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: stg.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: stg.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: stg.properties.primaryEndpoints.table
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

module functionApp 'br/public:avm/res/web/site:0.15.1' = {
  name: '${name}-site'
  params: {
    kind: 'functionapp,linux'
    name: name
    location: location
    tags: union(tags, {
      'azd-service-name': serviceName
    })
    serverFarmResourceId: appServicePlanId
    httpsOnly: true
    managedIdentities: {
      userAssignedResourceIds: [
        identityId
      ]
    }
    // Key Vault references (@Microsoft.KeyVault(...)) resolve with this identity.
    keyVaultAccessIdentityResourceId: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${stg.properties.primaryEndpoints.blob}${deploymentStorageContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: runtimeName
        version: runtimeVersion
      }
    }
    siteConfig: {
      alwaysOn: false
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      http20Enabled: true
    }
    appSettingsKeyValuePairs: union(hostSettings, appSettings)
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: name
  dependsOn: [
    functionApp
  ]
}

// App Service authentication with Microsoft Entra ID in front of the HTTP functions (reconcile,
// status): callers need an Entra token for the app registration as well as the function key,
// and the platform, not the caller, sets X-MS-CLIENT-PRINCIPAL-* (it drops them from incoming
// requests), so the reconcile report and the audit trail name who really asked. Event Grid's
// delivery path keeps the system key alone: Event Grid cannot present an Entra token to it.
resource auth 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(entraAuthClientId)) {
  // checkov:skip=CKV_AZURE_13:false positive, checkov reads this sites/config child (authsettingsV2) as a whole web app; the site comes from the AVM module and tests/infra/test_bicep.py covers it (docs/checkov.md)
  // checkov:skip=CKV_AZURE_63:false positive, checkov reads this sites/config child (authsettingsV2) as a whole web app; the site comes from the AVM module and tests/infra/test_bicep.py covers it (docs/checkov.md)
  // checkov:skip=CKV_AZURE_65:false positive, checkov reads this sites/config child (authsettingsV2) as a whole web app; the site comes from the AVM module and tests/infra/test_bicep.py covers it (docs/checkov.md)
  // checkov:skip=CKV_AZURE_66:false positive, checkov reads this sites/config child (authsettingsV2) as a whole web app; the site comes from the AVM module and tests/infra/test_bicep.py covers it (docs/checkov.md)
  // checkov:skip=CKV_AZURE_70:false positive, checkov reads this sites/config child (authsettingsV2) as a whole web app; the site comes from the AVM module and tests/infra/test_bicep.py covers it (docs/checkov.md)
  // checkov:skip=CKV_AZURE_80:false positive, checkov reads this sites/config child (authsettingsV2) as a whole web app; the site comes from the AVM module and tests/infra/test_bicep.py covers it (docs/checkov.md)
  // checkov:skip=CKV_AZURE_88:false positive, checkov reads this sites/config child (authsettingsV2) as a whole web app; the site comes from the AVM module and tests/infra/test_bicep.py covers it (docs/checkov.md)
  // checkov:skip=CKV_AZURE_222:false positive, checkov reads this sites/config child (authsettingsV2) as a whole web app; the site comes from the AVM module and tests/infra/test_bicep.py covers it (docs/checkov.md)
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/runtime/webhooks/eventgrid'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraAuthClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${entraAuthClientId}'
            entraAuthClientId
          ]
          defaultAuthorizationPolicy: {
            allowedPrincipals: {
              identities: entraAllowedPrincipalIds
            }
          }
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output name string = functionApp.outputs.name
output resourceId string = functionApp.outputs.resourceId
output defaultHostname string = functionApp.outputs.defaultHostname
