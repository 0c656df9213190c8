"""Assistant providers; :func:`build_assistant` picks the configured one."""

from __future__ import annotations

from convstore.assistant.protocol import Assistant
from convstore.config import Settings
from convstore.extras import require


def build_assistant(settings: Settings) -> Assistant:
    """The provider chosen by ``CONVSTORE_ASSISTANT_PROVIDER`` (``builtin`` or ``openai``)."""
    if settings.assistant_provider == "openai":
        require("openai", "the openai assistant provider")
        from convstore.assistant.providers.openai import OpenAIAssistant

        return OpenAIAssistant(settings)
    from convstore.assistant.providers.builtin import BuiltinAssistant

    return BuiltinAssistant()
