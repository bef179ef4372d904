// The subscription's system topic: created here, or an existing one reused
// (there can be only one per subscription). Either way it must carry a
// system-assigned identity for identity-based dead-lettering;
// scripts/postdeploy.sh adds one to a reused topic that lacks it.
param name string
param create bool
param tags object = {}

resource created 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (create) {
  name: name
  location: 'global'
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource reused 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = if (!create) {
  name: name
}

output name string = name
output principalId string = create ? created.identity.principalId : reused.identity.principalId
