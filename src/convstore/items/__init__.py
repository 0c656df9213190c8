"""Items: what agents produce (the OpenAI Responses item model), stored in conversations."""
