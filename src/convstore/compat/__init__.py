"""``/v1/conversations``: the OpenAI Conversations API over convstore's store, so the official
``openai`` client and the Agents SDK's ``OpenAIConversationsSession`` work unchanged."""
