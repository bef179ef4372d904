// Key Vault for the alert-channel secrets, in RBAC mode. The Function reads
// them through Key Vault references with its user-assigned identity (Key Vault
// Secrets User, granted in rbac.bicep); nobody gets access policies.
param name string
param location string = resourceGroup().location
param tags object = {}
@secure()
param teamsWebhookUrl string = ''
@secure()
param smtpPassword string = ''
param purgeProtection bool = true

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // Once on, purge protection cannot be switched off: leave the property out instead of false.
    enablePurgeProtection: purgeProtection ? true : null
    // Flex Consumption without VNet integration resolves Key Vault references
    // over the public endpoint; see docs/checkov.md (CKV_AZURE_109, CKV_AZURE_189).
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// A secret is created only when a value is given: an empty channel stays off
// (app setting ''), and a Key Vault reference to a missing secret would hand
// the code the literal '@Microsoft.KeyVault(...)' text instead.
resource teamsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(teamsWebhookUrl)) {
  parent: vault
  name: 'teams-webhook-url'
  properties: {
    value: teamsWebhookUrl
    contentType: 'text/uri'
  }
}

resource smtpSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(smtpPassword)) {
  parent: vault
  name: 'smtp-password'
  properties: {
    value: smtpPassword
    contentType: 'text/plain'
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
// Versionless secret URIs: a rotated secret is picked up without redeploying.
output teamsWebhookSecretUri string = '${vault.properties.vaultUri}secrets/teams-webhook-url'
output smtpPasswordSecretUri string = '${vault.properties.vaultUri}secrets/smtp-password'
