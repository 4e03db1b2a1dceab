"""How a question becomes a chat prompt (the same for training and evaluation unless ``eval.prompt`` is set).

Also the Tina repository's prompts, verbatim: its two system prompts (``OPEN_R1_SYSTEM_PROMPT`` for every
training set but knoveleng/open-rs, ``OPEN_RS_SYSTEM_PROMPT`` for that one), the chat template its training
script installs on the tokenizer (``deepseek_r1_reason``: DeepSeek-R1's template without the forced
``<think>\\n``), and the user-turn template of its LightEval tasks (``TINA_MATH_QUERY_TEMPLATE``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tina_sweep.trial.spec import PromptSpec

# tina/utils/prompt.py:4-17 @ e16606f (Tina). Plain (neither raw nor f-) strings there, written the same way here:
# each `\n` of the R1 prompt's format line is a real newline, `\\boxed{{}}` reaches the model as `\boxed{{}}`
# (doubled braces included: it is never formatted), and each prompt starts and ends with a newline.
# tests/test_recipes.py compares both with the quoted source (tina_sweep.trial.tina_source).
OPEN_R1_SYSTEM_PROMPT = """
You are a helpful AI Assistant that provides well-reasoned and detailed responses.
You first think about the reasoning process as an internal monologue and then provide the user with the answer.
Respond in the following format: <think>\n...\n</think>\n<answer>\n...\n</answer>
"""

OPEN_RS_SYSTEM_PROMPT = """
A conversation between User and Assistant. The user asks a question, and the Assistant solves it.
The assistant first thinks about the reasoning process in the mind and then provides the user with the answer, and put your final answer within \\boxed{{}} .
The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, 
i.e., <think> reasoning process here </think> <answer> answer here </answer>.
Note that respond by English, NOT use other languages.
"""

# scripts/eval/run_eval_custom_tasks.py (Tina): the user turn of every math task (AIME, AMC, MATH-500, Minerva).
TINA_MATH_QUERY_TEMPLATE = (
    "Solve the following math problem efficiently and clearly.  The last line of your response should be of the "
    "following format: 'Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is correct' (without quotes) "
    "where ANSWER is just the final number or expression that solves the problem. Think step by step before "
    "answering.\n\n{question}"
)

# REASON_CHAT_TEMPLATE of tina/utils/chat_template.py (Tina), which its grpo.py sets on the tokenizer
# (tina/post_train_hf/grpo.py:88 @ e16606f). That file is in Tina's repository in both eras (grpo.py imports it from
# there), but the stored copy of the repository we quote from (tina_sweep/data/reference/tina_source) holds no
# version of it, so this text is not compared with Tina's own: it is the text derivative repositories carry
# verbatim under the same name beside Tina's DEFAULT_CHAT_TEMPLATE. It is DeepSeek-R1's
# chat template (system prompt first, <｜User｜>/<｜Assistant｜> turns) whose generation prompt is a bare
# '<｜Assistant｜>' (the distilled model's current template appends '<think>\n'), so the model writes the opening
# think tag itself -- which the tag_count reward counts.
DEEPSEEK_R1_REASON_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}"
    "{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}"
    "{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = false -%}"
    "{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}"
    "{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + "
    "tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + "
    "'<｜tool▁call▁end｜>'}}{%- set ns.is_first = true -%}"
    "{%- else %}{{'\\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + "
    "'\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}"
    "{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}"
    "{%- if message['role'] == 'assistant' and message['content'] is not none %}"
    "{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}"
    "{%- set ns.is_tool = false -%}"
    "{%- else %}{% set content = message['content'] %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}"
    "{%- endif %}{%- endif %}"
    "{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}"
    "{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + "
    "'<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}"
    "{%- else %}{{'\\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}"
    "{%- endif %}{%- endfor -%}"
    "{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}"
    "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}"
)

CHAT_TEMPLATES: dict[str, str] = {"deepseek_r1_reason": DEEPSEEK_R1_REASON_TEMPLATE}


def chat_template_text(name_or_jinja: str) -> str:
    """A named template's Jinja text, or the given Jinja text itself."""
    return CHAT_TEMPLATES.get(name_or_jinja, name_or_jinja)


def apply_chat_template_choice(tokenizer, prompt: PromptSpec) -> None:
    """Install the prompt's chat template on the tokenizer (no-op when it keeps the tokenizer's own)."""
    if prompt.chat_template is not None:
        tokenizer.chat_template = chat_template_text(prompt.chat_template)


def user_turn(question: str, prompt: PromptSpec) -> str:
    if prompt.template is not None:
        return prompt.template.replace("{question}", question)
    return f"{question}\n{prompt.instruction}" if prompt.instruction else question


def system_text(prompt: PromptSpec, target_length: int | None = None) -> str | None:
    """The system prompt, with the L1 length target appended as Tina's make_conv_for_grpo_l1 does."""
    if target_length is None:
        return prompt.system
    return (prompt.system or "") + f"\nThink for {target_length} tokens."


def chat_messages(question: str, prompt: PromptSpec, target_length: int | None = None) -> list[dict[str, str]]:
    """System message (when set), few-shot turns, then the user turn: question and answer instruction."""
    system = system_text(prompt, target_length)
    messages = [{"role": "system", "content": system}] if system is not None else []
    for example in prompt.examples:
        messages.append({"role": "user", "content": user_turn(example.question, prompt)})
        messages.append({"role": "assistant", "content": example.answer})
    return messages + [{"role": "user", "content": user_turn(question, prompt)}]
