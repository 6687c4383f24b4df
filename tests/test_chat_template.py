"""Chat templates render the same string as transformers' apply_chat_template, and fail clearly."""

from __future__ import annotations

import pytest

from tinyformers import AutoTokenizer
from tinyformers.tokenization.chat_template import ChatTemplateError

CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Uses the helpers real templates use: raise_exception, tojson, namespace, loop controls, bos_token, trimming.
FANCY = """{{ bos_token }}
{%- set ns = namespace(n=0) -%}
{% for m in messages %}
  {% if m['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('bad role ' + m['role']) }}{% endif %}
  {% if m['role'] == 'system' %}{% continue %}{% endif %}
  {% set ns.n = ns.n + 1 %}
[{{ ns.n }}] {{ m['role'] }}: {{ m['content'] }}
  {% if m.get('thinking') %}(thinking: {{ m['thinking'] }}){% endif %}
{% endfor %}
{% if tools %}tools={{ tools | tojson }}{% endif %}
{% if add_generation_prompt %}[{{ ns.n + 1 }}] assistant:{% endif %}"""

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": 'Hi <b>there</b> & "you"'},
        {"role": "assistant", "content": "Hello! 你好 👋", "reasoning_content": "greet back"},
        {"role": "user", "content": "Again", "name": None},
    ],
]


@pytest.fixture(scope="module")
def tokenizers(minilm_dir, hf_minilm_tokenizer):
    return AutoTokenizer.from_pretrained(minilm_dir), hf_minilm_tokenizer


@pytest.mark.parametrize("template", [CHATML, FANCY], ids=["chatml", "fancy"])
@pytest.mark.parametrize("chat", range(len(CHATS)))
@pytest.mark.parametrize("generation_prompt", [False, True])
def test_rendering_matches_transformers(tokenizers, template, chat, generation_prompt):
    ours, ref = tokenizers
    kw = dict(chat_template=template, add_generation_prompt=generation_prompt, tokenize=False)
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"city": "Zürich <1>"}}}]
    assert ours.apply_chat_template(CHATS[chat], **kw) == ref.apply_chat_template(CHATS[chat], **kw)
    assert ours.apply_chat_template(CHATS[chat], tools=tools, **kw) == ref.apply_chat_template(
        CHATS[chat], tools=tools, **kw
    )


@pytest.mark.parametrize("template", [CHATML, FANCY], ids=["chatml", "fancy"])
def test_continue_final_message_and_tokenized_output(tokenizers, template):
    ours, ref = tokenizers
    chat = CHATS[0] + [{"role": "assistant", "content": "The capital is"}]
    kw = dict(chat_template=template, continue_final_message=True, tokenize=False)
    assert ours.apply_chat_template(chat, **kw) == ref.apply_chat_template(chat, **kw)
    got = ours.apply_chat_template(chat, chat_template=template, continue_final_message=True)
    want = ref.apply_chat_template(chat, chat_template=template, continue_final_message=True)
    assert got["input_ids"] == want["input_ids"]
    batch = ours.apply_chat_template(CHATS, chat_template=template, padding=True, return_tensors="pt")
    want = ref.apply_chat_template(CHATS, chat_template=template, padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == want["input_ids"].tolist()


def test_template_errors(tokenizers):
    ours, _ = tokenizers
    with pytest.raises(ChatTemplateError, match="raised an error: bad role tool"):
        ours.apply_chat_template([{"role": "tool", "content": "x"}], chat_template=FANCY, tokenize=False)
    with pytest.raises(ChatTemplateError, match="does not compile"):
        ours.apply_chat_template(CHATS[0], chat_template="{% for %}", tokenize=False)
    with pytest.raises(ChatTemplateError, match="no chat_template"):
        ours.apply_chat_template(CHATS[0])
    with pytest.raises(ChatTemplateError, match="cannot both be set"):
        ours.apply_chat_template(
            CHATS[0], chat_template=CHATML, add_generation_prompt=True, continue_final_message=True
        )
    with pytest.raises(ChatTemplateError, match="empty conversation"):
        ours.apply_chat_template([], chat_template=CHATML)


def test_sandbox_blocks_python_internals(tokenizers):
    ours, _ = tokenizers
    with pytest.raises(Exception, match="unsafe|access|underscore"):
        ours.apply_chat_template(CHATS[0], chat_template="{{ messages.__class__.__mro__ }}", tokenize=False)
