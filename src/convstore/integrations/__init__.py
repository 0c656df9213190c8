"""Adapters that let other frameworks keep their history in convstore: the OpenAI Agents SDK
session (``convstore.integrations.agents``, the ``agents`` extra) and the LangChain chat message
history (``convstore.integrations.langchain``, the ``langchain`` extra). docs/integrations.md."""
