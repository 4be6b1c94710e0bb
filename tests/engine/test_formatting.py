"""The one prompt format: masks exactly the prompt tokens, appends EOS, matches the Modelfile template."""

from __future__ import annotations

import pytest

from engine.student import formatting as F

TASK = F.PromptFormat(F.BASE, "Evaluate the boolean expression.",
                      (("not ( True ) and ( True ) is", "not True is False. So the answer is False."),))


@pytest.fixture(scope="module")
def base_tok(tiny_student):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_student)


@pytest.fixture(scope="module")
def chat_tok(tiny_chat_student):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_chat_student)


def test_base_format_is_the_papers_layout(base_tok):
    assert F.choose_kind(base_tok) == F.BASE
    text = F.prompt_text(TASK, base_tok, "True and False is")
    assert text == ("Evaluate the boolean expression.\n\nInput: not ( True ) and ( True ) is\n"
                    "Output: not True is False. So the answer is False.\n\nInput: True and False is\nOutput:")
    assert F.response_text(TASK, base_tok, "True and False is", "The answer is False.") == " The answer is False."


def test_mask_covers_exactly_the_prompt_and_eos_is_trained(base_tok):
    ids, labels = F.encode(TASK, base_tok, "True and False is", "The answer is False.")
    prompt_ids = F.encode_prompt(TASK, base_tok, "True and False is")
    n = len(prompt_ids)
    assert ids[:n] == prompt_ids
    assert labels[:n] == [F.IGNORE_INDEX] * n
    assert all(lab != F.IGNORE_INDEX for lab in labels[n:])
    assert labels[n:] == ids[n:]
    assert ids[-1] == base_tok.eos_token_id
    assert base_tok.decode(ids[n:-1]) == " The answer is False."
    assert base_tok.decode(ids) == F.prompt_text(TASK, base_tok, "True and False is") + \
        " The answer is False." + base_tok.eos_token


def test_truncation_keeps_the_response_and_cuts_the_prompt_start(base_tok):
    long_input = "True and " * 80 + "False is"
    ids, labels = F.encode(TASK, base_tok, long_input, "The answer is False.", max_length=64)
    assert len(ids) == 64
    resp = [x for x in labels if x != F.IGNORE_INDEX]
    assert resp[-1] == base_tok.eos_token_id
    assert base_tok.decode(resp[:-1]) == " The answer is False."


def test_chat_format_uses_the_template_and_masks_the_prompt(chat_tok):
    fmt = F.PromptFormat(F.choose_kind(chat_tok), TASK.instruction, TASK.examples)
    assert fmt.kind == F.CHAT
    ids, labels = F.encode(fmt, chat_tok, "True and False is", "The answer is False.")
    prompt = F.prompt_text(fmt, chat_tok, "True and False is")
    assert prompt.startswith("<|im_start|>system\nEvaluate the boolean expression.")
    assert prompt.endswith("<|im_start|>user\nTrue and False is<|im_end|>\n<|im_start|>assistant\n")
    n = sum(1 for x in labels if x == F.IGNORE_INDEX)
    assert chat_tok.decode(ids[:n]) == prompt
    assert chat_tok.decode(ids[n:]) == "The answer is False.<|im_end|>"
    assert ids[-1] == chat_tok.eos_token_id


@pytest.mark.parametrize("which", ["base", "chat"])
def test_ollama_template_renders_the_training_prompt(which, base_tok, chat_tok):
    tok = base_tok if which == "base" else chat_tok
    fmt = F.PromptFormat(F.choose_kind(tok), TASK.instruction, TASK.examples)
    template = F.ollama_template(fmt, tok)
    assert "{{ .Prompt }}" in template
    for inp in ("True and False is", "weird {{ braces }} input"):
        assert F.render_ollama_template(template, fmt.system, inp) == F.prompt_text(fmt, tok, inp)
    bare = F.PromptFormat(fmt.kind)
    assert F.render_ollama_template(F.ollama_template(bare, tok), bare.system, "x") == F.prompt_text(bare, tok, "x")


def test_unknown_or_impossible_format_is_a_clear_error(base_tok):
    from engine.errors import EngineError

    with pytest.raises(EngineError, match="no chat template"):
        F.choose_kind(base_tok, "chat")
    with pytest.raises(EngineError, match="unknown prompt format"):
        F.choose_kind(base_tok, "fancy")


def test_chat_template_without_system_role_folds_the_context_into_the_user_turn(chat_tok, tmp_path):
    """Gemma-style templates raise on a system message: the instruction opens the user turn instead."""
    from transformers import AutoTokenizer

    chat_tok.save_pretrained(tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    assert not F.supports_system(tok) and F.supports_system(chat_tok)
    fmt = F.PromptFormat(F.CHAT, TASK.instruction, TASK.examples)
    prompt = F.prompt_text(fmt, tok, "True and False is")
    assert prompt == (f"<|im_start|>user\n{fmt.system}\n\nTrue and False is<|im_end|>\n"
                      "<|im_start|>assistant\n")
    ids, labels = F.encode(fmt, tok, "True and False is", "The answer is False.")
    n = labels.count(F.IGNORE_INDEX)
    assert tok.decode(ids[:n]) == prompt and tok.decode(ids[n:]) == "The answer is False.<|im_end|>"
    template = F.ollama_template(fmt, tok)
    assert F.render_ollama_template(template, fmt.system, "True and False is") == prompt
