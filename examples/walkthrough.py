"""The classic Transformers walkthrough on a real BERT model (all-MiniLM-L6-v2), with tinyformers.

Step 1: a tokenizer turns text into input_ids. Step 2: a model turns ids into hidden states. Step 3: a task head
turns hidden states into an answer. Then: sentence similarity from mean-pooled embeddings.
"""

import torch

from tinyformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer
from tinyformers.pipelines import default_model, sentence_embeddings

model_dir = default_model("sentence-embedding")  # all-MiniLM-L6-v2, where `tinyformers setup` put it

# Step 1: text -> input_ids
tokenizer = AutoTokenizer.from_pretrained(model_dir)
text = "how are you."
encoded_input = tokenizer(text, return_tensors="pt")
print(f"{text!r} -> tokens {tokenizer.convert_ids_to_tokens(encoded_input['input_ids'][0].tolist())}")
print(f"input_ids = {encoded_input['input_ids'].tolist()}")

# Step 2: input_ids -> hidden states
model = AutoModel.from_pretrained(model_dir)
with torch.inference_mode():
    output = model(**encoded_input)
print("\nThe model output holds:")
for key in output:
    print(f"  {key}: a tensor of shape {tuple(getattr(output, key).shape)}")

# Step 3: a task head on top (a fresh, untrained 2-label classifier: its scores are random until trained)
config = AutoConfig.from_pretrained(model_dir, num_labels=2)
classifier = AutoModelForSequenceClassification.from_config(config)
with torch.inference_mode():
    logits = classifier(**tokenizer("How are you?", return_tensors="pt")).logits
print(f"\nSequence-classification logits (untrained head): shape {tuple(logits.shape)}")

# What the real model is for: sentence similarity
sentences = [
    "The cat sits on the mat.",
    "A cat is sitting on a rug.",
    "Stock markets fell sharply today.",
]
emb = sentence_embeddings(model, tokenizer, sentences)
sim = emb @ emb.T
print("\nCosine similarity of sentence embeddings:")
for i, s in enumerate(sentences):
    print(f"  {s:<36} " + "  ".join(f"{sim[i, j]:.3f}" for j in range(len(sentences))))
