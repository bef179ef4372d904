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

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:Flex Consumption without VNet integration resolves Key Vault references over the public endpoint; access is Entra RBAC only (docs/checkov.md)
  // checkov:skip=CKV_AZURE_189:public network access needed for the same reason as CKV_AZURE_109 (docs/checkov.md)
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
    // Once on it cannot be switched off; a re-created environment of the same
    // name must recover the soft-deleted vault first (docs/deploy.md).
    enablePurgeProtection: true
    // Flex Consumption without VNet integration resolves Key Vault references
    // over the public endpoint.
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
  // checkov:skip=CKV_AZURE_41:an expiry would silently stop the alert channel when it passes; the operator rotates the secret and the versionless reference follows (docs/checkov.md)
  // checkov:skip=CKV_AZURE_114:false positive, contentType is set; checkov does not look inside conditional (if) resources; tests/infra/test_bicep.py asserts it (docs/checkov.md)
  parent: vault
  name: 'teams-webhook-url'
  properties: {
    value: teamsWebhookUrl
    contentType: 'text/uri'
  }
}

resource smtpSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(smtpPassword)) {
  // checkov:skip=CKV_AZURE_41:an expiry would silently stop the alert channel when it passes; the operator rotates the secret and the versionless reference follows (docs/checkov.md)
  // checkov:skip=CKV_AZURE_114:false positive, contentType is set; checkov does not look inside conditional (if) resources; tests/infra/test_bicep.py asserts it (docs/checkov.md)
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
