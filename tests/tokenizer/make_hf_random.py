#!/usr/bin/env python3
"""Offline generator of tests/tokenizer/hf_random.jsonl: random texts stressing the Llama 3 split regex (whitespace
classes, contractions with case folding, digits, letters and numbers from every Unicode version, special-token
text) encoded by Hugging Face `tokenizers`, both with special-token recognition (`ids`) and without
(`ids_split_special`). The tokenizer test checks ttc against every line. Needs `pip install tokenizers`; never runs
in the build or the tests.

Usage: python3 tests/tokenizer/make_hf_random.py > tests/tokenizer/hf_random.jsonl"""
import json
import os
import random

import tokenizers
from tokenizers import Tokenizer

here = os.path.dirname(os.path.abspath(__file__))
tok = Tokenizer.from_file(os.path.join(here, "../../../shared/assets/llama3/tokenizer.json"))
random.seed(20261127)
atoms = ["a", "Z", " ", "  ", "\n", "\r", "\t", "\x0b", "\x0c", "1", "23", "4567", "é", "ß", "数", "😀", "'s", "'S",
         "'ll", "'LL", "'Ve", "ſ", "K", "<|eot_id|>", "<|begin_of_text|>", "<|", "|>", "$", "\\frac", "\u00a0",
         "\u2028", "\u2029", "\u180e", "\u200b", "\u3000", "\u0085", "\u1680", "\u202f", "İ", "\u0301", "\x01",
         "\x00", "\u00ad", "٣", "Ⅻ", "½", "\ufeff", "\U0001F1FA", "\U000E0001", "\u0378", "\ud7ff", "\ue000", "x",
         "'", "’", "-", "\x1c", "\x1f", "\U00011F30", "\U000314D5", "\U00013DB8", "\U0001E5D0", "\U00016D40"]


def rand_cp():
    while True:
        c = random.randrange(0x110000)
        if not 0xD800 <= c < 0xE000:
            return chr(c)


print(json.dumps({"generator": f"tokenizers {tokenizers.__version__}"}))
for _ in range(1500):
    n = random.randrange(1, 14)
    text = "".join(random.choice(atoms) if random.random() < 0.75 else rand_cp() for _ in range(n))
    tok.encode_special_tokens = False
    ids = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = True
    split = tok.encode(text, add_special_tokens=False).ids
    print(json.dumps({"text": text, "ids": ids, "ids_split_special": split}, ensure_ascii=False))
