// The event subscription that feeds on_nsg_change: only successful writes and
// deletes, only of the resources that decide whether the lockdown holds (NSGs,
// their rules, subnets and the VNets that carry them, NICs; route tables, Azure
// Firewalls, firewall policies and IP groups on the path). Everything else in
// the subscription never wakes the Function.
param topicName string
param name string
param functionResourceId string
param deadLetterStorageAccountId string
param deadLetterContainerName string
param maxDeliveryAttempts int = 30
param eventTimeToLiveInMinutes int = 1440

// data.operationName values, the same set remediation/events.py
// treats as relevant (tests/infra/test_eventgrid.py holds them together). A VNet
// PUT or DELETE changes its subnets' NSG associations without a subnets/*
// event, hence virtualNetworks/*. Event Grid compares strings case-insensitively.
var operationNames = [
  'Microsoft.Network/networkSecurityGroups/write'
  'Microsoft.Network/networkSecurityGroups/delete'
  'Microsoft.Network/networkSecurityGroups/securityRules/write'
  'Microsoft.Network/networkSecurityGroups/securityRules/delete'
  'Microsoft.Network/virtualNetworks/write'
  'Microsoft.Network/virtualNetworks/delete'
  'Microsoft.Network/virtualNetworks/subnets/write'
  'Microsoft.Network/virtualNetworks/subnets/delete'
  'Microsoft.Network/networkInterfaces/write'
  'Microsoft.Network/networkInterfaces/delete'
  // The path beyond the NSGs (remediation/paths.py): routes and the Azure Firewall on it.
  'Microsoft.Network/routeTables/write'
  'Microsoft.Network/routeTables/delete'
  'Microsoft.Network/routeTables/routes/write'
  'Microsoft.Network/routeTables/routes/delete'
  'Microsoft.Network/azureFirewalls/write'
  'Microsoft.Network/azureFirewalls/delete'
  'Microsoft.Network/firewallPolicies/write'
  'Microsoft.Network/firewallPolicies/delete'
  'Microsoft.Network/firewallPolicies/ruleCollectionGroups/write'
  'Microsoft.Network/firewallPolicies/ruleCollectionGroups/delete'
  'Microsoft.Network/ipGroups/write'
  'Microsoft.Network/ipGroups/delete'
]

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

resource subscription_ 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: name
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: functionResourceId
        // One event per invocation: each is reconciled on its own, and a
        // failure retries only that event.
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
        'Microsoft.Resources.ResourceDeleteSuccess'
      ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: operationNames
        }
        {
          operatorType: 'StringBeginsWith'
          key: 'data.resourceProvider'
          values: [
            'Microsoft.Network'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output name string = subscription_.name
output operationNames array = operationNames
