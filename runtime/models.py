"""Is a model id usable here? Checked when a bot's model is set, not on every turn."""

from __future__ import annotations

import asyncio
import os

from builders.spec import OFFLINE_MODEL
from runtime.llm import import_litellm


def _problem(model: str, api_base: str | None) -> str | None:
    if model == OFFLINE_MODEL:
        return None
    if model.startswith("openai/") and api_base:
        return None  # an OpenAI-compatible server of our own (STUDIO_LLM_API_BASE)
    litellm = import_litellm()
    try:
        _, provider, _, _ = litellm.get_llm_provider(model=model)
    except Exception:
        return (
            f"'{model}' is not a model litellm knows; use e.g. gpt-4o-mini, "
            "anthropic/<name>, openai/<name> with STUDIO_LLM_API_BASE, or offline"
        )
    checked = litellm.validate_environment(model=model)
    missing = checked.get("missing_keys") or []
    if checked.get("keys_in_environment") or any(os.environ.get(k) for k in missing):
        return None
    keys = " or ".join(missing) or "its API key"
    return f"{provider} needs {keys}; set it in the environment or .env, or use offline"


async def check_model(model: str, *, api_base: str | None) -> str | None:
    """None when `model` can be called, else a one-line reason. litellm loads in a thread."""
    return await asyncio.to_thread(_problem, model, api_base)
