"""How a question becomes a chat prompt (the same for training and evaluation)."""

from __future__ import annotations

from tina_sweep.config import PromptSpec


def user_turn(question: str, prompt: PromptSpec) -> str:
    return f"{question}\n{prompt.instruction}" if prompt.instruction else question


def chat_messages(question: str, prompt: PromptSpec) -> list[dict[str, str]]:
    """System message (when set), few-shot turns, then the user turn: question and answer instruction."""
    messages = [{"role": "system", "content": prompt.system}] if prompt.system is not None else []
    for example in prompt.examples:
        messages.append({"role": "user", "content": user_turn(example.question, prompt)})
        messages.append({"role": "assistant", "content": example.answer})
    return messages + [{"role": "user", "content": user_turn(question, prompt)}]
