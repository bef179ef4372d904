// Optional Azure Communication Services Email: an e-mail service with an
// Azure-managed domain, a communication service linked to it, and the
// identity's right to send through it with an Entra token (no access keys).
param resourceToken string
param tags object = {}
param dataLocation string = 'Europe'
param principalId string

var spec = loadJsonContent('./email-sender-role-actions.json')

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: 'ecs-lockdown-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource domain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communication 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: 'acs-lockdown-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [
      domain.id
    ]
  }
}

// The actions Microsoft documents for sending e-mail with an Entra identity,
// assignable only in this resource group, assigned on the communication service.
resource senderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'cyclecloud-lockdown-email-sender')
  properties: {
    roleName: 'CycleCloud Lockdown E-mail Sender (${resourceGroup().name}, ${subscription().subscriptionId})'
    description: spec.description
    type: 'CustomRole'
    permissions: [
      {
        actions: spec.actions
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource senderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communication.id, principalId, senderRole.id)
  scope: communication
  properties: {
    roleDefinitionId: senderRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = 'https://${communication.properties.hostName}'
output senderAddress string = 'DoNotReply@${domain.properties.mailFromSenderDomain}'
