// The custom role that lets the Function read the network and restore NSGs,
// instead of Network Contributor's Microsoft.Network/*. Its actions are data
// (remediator-role-actions.json) so tests can hold them to the ARM requests
// the adapter really makes (tests/infra/rbac_map.py).
targetScope = 'subscription'

param principalId string
@description('Add the actions optional subnet service-endpoint repair needs.')
param enableServiceEndpointRepair bool = false

var spec = loadJsonContent('./remediator-role-actions.json')
var actions = concat(spec.actions, enableServiceEndpointRepair ? spec.serviceEndpointRepairActions : [])

// One role per subscription: every environment in it shares the definition.
// Role names are unique per tenant, hence the subscription id in the name.
resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'cyclecloud-lockdown-remediator')
  properties: {
    roleName: 'CycleCloud Lockdown Remediator (${subscription().subscriptionId})'
    description: spec.description
    type: 'CustomRole'
    permissions: [
      {
        actions: actions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, role.id)
  properties: {
    roleDefinitionId: role.id
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'CycleCloud Lockdown Guard: read the network, restore baseline NSG rules'
  }
}

output roleDefinitionId string = role.id
output roleName string = role.properties.roleName
