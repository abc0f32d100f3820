"""Build a tiny, randomly initialised GptOssForCausalLM with a locally trained tokenizer.

The smoke experiment needs a model that ms-swift recognises as gpt-oss (model_type and
template `gpt_oss`) without downloading anything. Same architecture as openai/gpt-oss-20b,
a few hundred kilobytes of weights. Deterministic: same inputs and seed, same files.

Usage: build_tiny_model.py OUTPUT_DIR CORPUS.jsonl [CORPUS.jsonl ...]
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, GptOssConfig, GptOssForCausalLM, PreTrainedTokenizerFast

# The harmony format's special tokens, as in the real gpt-oss tokenizer.
HARMONY_TOKENS = ["<|startoftext|>", "<|endoftext|>", "<|start|>", "<|message|>", "<|end|>",
                  "<|channel|>", "<|return|>", "<|constrain|>", "<|call|>"]
VOCAB_SIZE = 3000
SEED = 1234


def corpus_lines(paths):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                for turn in json.loads(line)["conversations"]:
                    yield turn["value"]
    # Role and channel words of the harmony template, so they get short encodings.
    yield "system user assistant developer analysis final commentary Reasoning: medium"


def build_tokenizer(paths):
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - len(HARMONY_TOKENS), special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus_lines(paths), trainer=trainer)
    tok.add_special_tokens(HARMONY_TOKENS)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|return|>",
                                   pad_token="<|endoftext|>", model_max_length=4096)


def build_model(tokenizer):
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in HARMONY_TOKENS}
    config = GptOssConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_local_experts=4,
        num_experts_per_tok=2, sliding_window=32, max_position_embeddings=4096,
        bos_token_id=ids["<|startoftext|>"], eos_token_id=ids["<|return|>"], pad_token_id=ids["<|endoftext|>"],
        torch_dtype="float32")
    torch.manual_seed(SEED)
    model = GptOssForCausalLM(config).eval()
    generation = GenerationConfig(bos_token_id=ids["<|startoftext|>"], pad_token_id=ids["<|endoftext|>"],
                                  eos_token_id=[ids["<|return|>"], ids["<|call|>"]], do_sample=False)
    return model, generation


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out = Path(argv[1])
    tokenizer = build_tokenizer(argv[2:])
    model, generation = build_model(tokenizer)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target, then move into place: an interrupted build leaves no model.
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp.", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        model.generation_config = generation
        generation.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    params = sum(p.numel() for p in model.parameters())
    print(f"tiny gpt-oss written to {out}: {params} parameters, vocab {len(tokenizer)}")


if __name__ == "__main__":
    main(sys.argv)
