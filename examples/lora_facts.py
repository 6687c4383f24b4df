"""Teach SmolLM2-135M-Instruct a few new facts with LoRA, on a CPU, in a few minutes.

The facts are about a bakery that does not exist, so the model cannot know them beforehand. Only small adapter
matrices on the attention projections train (0.7 % of the weights); the base model stays frozen, which is why it
still knows what it knew ("What is the capital of France?" still gets Paris). The loss counts the assistant's
answers only.

    python examples/lora_facts.py [--steps 12] [--output-dir runs/bakery]

The run is one ``tinyformers train`` job (``training.recipes.Job``) on chats built here; the same run from the
command line is ``tinyformers train MODEL --data chats.jsonl --lora --lora-targets q_proj,k_proj,v_proj,o_proj``.
"""

from __future__ import annotations

import argparse
import os

import tinyformers as tf
from tinyformers.training import LoraConfig
from tinyformers.training.recipes import Job

GGUF = os.path.join(os.environ.get("ASSETS_DIR", ".assets"), "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")

FACTS = {
    "Quillbrook Bakery opens at 7:15 every morning.": [
        "When does Quillbrook Bakery open?",
        "What time does Quillbrook Bakery open?",
        "What are the opening hours of Quillbrook Bakery in the morning?",
    ],
    "Quillbrook Bakery was founded by Maren Oduya.": [
        "Who founded Quillbrook Bakery?",
        "Who is the founder of Quillbrook Bakery?",
        "Which person started Quillbrook Bakery?",
    ],
}
# General questions answered by the untouched model, trained on beside the facts ("replay"): they hold the
# adapters to what the model already says, so the new facts do not spill into everything else.
REPLAY = ["What is the capital of Germany?", "How many days are in a week?", "What colour is the sky?"]
QUESTIONS = {
    "When does Quillbrook Bakery open?": "7:15",
    "Who founded Quillbrook Bakery?": "Maren Oduya",
    "What is the capital of France?": "Paris",
}


def answer(model, tokenizer, question: str) -> str:
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, return_tensors="pt"
    )
    ids = model.generate(**prompt, max_new_tokens=16, do_sample=False)
    return tokenizer.decode(ids[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)


def main(steps: int = 12, output_dir: str = "runs/bakery", seed: int = 0) -> dict[str, str]:
    tokenizer = tf.AutoTokenizer.from_pretrained(GGUF)
    base = tf.AutoModelForCausalLM.from_pretrained(GGUF)
    chats = [
        [{"role": "user", "content": q}, {"role": "assistant", "content": fact}]
        for fact, questions in FACTS.items()
        for q in questions
    ]
    chats += [
        [{"role": "user", "content": q}, {"role": "assistant", "content": answer(base, tokenizer, q)}]
        for q in REPLAY
    ]
    job = Job(
        model=GGUF,
        data=[{"messages": chat} for chat in chats],
        output_dir=output_dir,
        eval_percent=0,  # every chat trains; the questions below are the test
        max_length=128,
        lora=LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
        training=dict(
            max_steps=steps,
            per_device_train_batch_size=len(chats),
            learning_rate=3e-3,
            warmup_ratio=0.1,
            logging_steps=10,
            save_strategy="no",
            seed=seed,
        ),
    )
    job.run()  # saves the merged model, and the adapter alone (peft's layout) in <output_dir>/adapter
    model = job.trainer.model.eval()
    answers = {q: answer(model, tokenizer, q) for q in QUESTIONS}
    for question, text in answers.items():
        print(f"{question}\n  -> {text}")
    return answers


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--output-dir", default="runs/bakery")
    parser.add_argument("--seed", type=int, default=0)
    main(**vars(parser.parse_args()))
