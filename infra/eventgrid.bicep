// Event Grid wiring, deployed AFTER the code (scripts/postdeploy.sh, the azd
// postdeploy hook): Azure validates that an AzureFunction destination exists
// when the event subscription is created, and on_nsg_change exists only once
// `azd deploy` has published function_app.py.
//
// A subscription can have only one system topic of type
// Microsoft.Resources.Subscriptions. postdeploy.sh looks for it: it creates one
// in the app's resource group when there is none, and otherwise passes its name
// and resource group with createSystemTopic=false so it is reused, not replaced.
targetScope = 'subscription'

@description('Resource group of the Function App (main.bicep output AZURE_RESOURCE_GROUP).')
param resourceGroupName string

@description('Function App name (main.bicep output AZURE_FUNCTION_APP_NAME).')
param functionAppName string

@description('Storage account holding the dead-letter container (main.bicep output AZURE_STORAGE_ACCOUNT_NAME).')
param storageAccountName string

param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Name of the Microsoft.Resources.Subscriptions system topic; empty: evgt-lockdown-<hash of the subscription>.')
param systemTopicName string = ''

@description('true: create (or update) the topic; false: reuse the existing topic systemTopicName as it is.')
param createSystemTopic bool = true

@description('Resource group of the topic; empty: the app resource group.')
param systemTopicResourceGroupName string = ''

@description('The Event Grid-triggered function in function_app.py.')
param functionName string = 'on_nsg_change'

@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

param tags object = {
  application: 'cyclecloud-lockdown-guard'
}

var topicName = empty(systemTopicName) ? 'evgt-lockdown-${uniqueString(subscription().id)}' : systemTopicName
var topicResourceGroup = empty(systemTopicResourceGroupName) ? resourceGroupName : systemTopicResourceGroupName
var functionResourceId = '${subscription().id}/resourceGroups/${resourceGroupName}/providers/Microsoft.Web/sites/${functionAppName}/functions/${functionName}'

module topic 'app/eventgrid-topic.bicep' = {
  name: 'lockdown-eventgrid-topic'
  scope: resourceGroup(topicResourceGroup)
  params: {
    name: topicName
    create: createSystemTopic
    tags: tags
  }
}

// The topic's identity writes undeliverable events to the dead-letter container
// (shared keys are disabled on the account, so it needs a data role).
module deadLetterAccess 'app/deadletter-access.bicep' = {
  name: 'lockdown-eventgrid-deadletter-access'
  scope: resourceGroup(resourceGroupName)
  params: {
    storageAccountName: storageAccountName
    containerName: deadLetterContainerName
    principalId: topic.outputs.principalId
  }
}

module eventSubscription 'app/eventgrid-subscription.bicep' = {
  name: 'lockdown-eventgrid-subscription'
  scope: resourceGroup(topicResourceGroup)
  params: {
    topicName: topic.outputs.name
    name: 'lockdown-${functionAppName}'
    functionResourceId: functionResourceId
    deadLetterStorageAccountId: deadLetterAccess.outputs.storageAccountId
    deadLetterContainerName: deadLetterContainerName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
}

output EVENTGRID_SYSTEM_TOPIC_NAME string = topic.outputs.name
output EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP string = topicResourceGroup
output EVENTGRID_SUBSCRIPTION_NAME string = eventSubscription.outputs.name
