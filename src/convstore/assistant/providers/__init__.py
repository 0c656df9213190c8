"""Assistant providers; :func:`build_assistant` picks the configured one."""

from __future__ import annotations

from convstore.assistant.protocol import Assistant
from convstore.config import ChatModel, Settings
from convstore.extras import require


def build_assistant(settings: Settings, choice: ChatModel | None = None) -> Assistant:
    """The provider chosen by ``CONVSTORE_ASSISTANT_PROVIDER`` (``builtin`` or ``openai``),
    or by ``choice`` (one of ``CONVSTORE_CHAT_MODELS``)."""
    provider = choice.provider if choice is not None else settings.assistant_provider
    if provider == "openai":
        require("openai", "the openai assistant provider")
        from convstore.assistant.providers.openai import OpenAIAssistant

        model = choice.model if choice is not None else None
        return OpenAIAssistant(settings, model=model)
    from convstore.assistant.providers.builtin import BuiltinAssistant

    return BuiltinAssistant()
