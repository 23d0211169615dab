"""`mechinterp zoo verify NAME`: re-measure the phenomena a zoo entry is shipped for, from its shipped weights."""

from __future__ import annotations

import json

from mechinterp.course.toolkit.facts import fact_prompts, recall
from mechinterp.course.toolkit.findings import Finding
from mechinterp.course.toolkit.ioi import ioi_dataset, ioi_metrics
from mechinterp.course.toolkit.ioi_v2 import ioi_v2_dataset, shared_decoupled
from mechinterp.course.toolkit.liars import behaviour
from mechinterp.course.toolkit.model import HookedModel
from mechinterp.course.toolkit.sentiment import accuracy
from mechinterp.course.toolkit.tracing import trace_facts
from mechinterp.course.toolkit.zoo.load import heldout_ids, load_zoo_hf, load_zoo_tokenizer, sha256, zoo_dir
from mechinterp.course.toolkit.zoo.measure import heldout_loss, logit_lens_curve, measure_induction

INDUCTION_MIN, PREV_TOKEN_MIN, NO_INDUCTION_MAX = 0.4, 0.4, 0.2


def verify(name: str) -> list:
    """Re-measure the phenomena a zoo entry is shipped for; a list of Findings (checksum first)."""
    entry = zoo_dir() / name
    model, card = load_zoo_hf(name)
    found = [Finding(f"{name}: weights checksum matches the card", "sha256 in card.json",
                     float(sha256(entry / "model.safetensors") == card.get("sha256")), 1.0, 1.0)]
    if name.startswith("attn-only"):
        m = measure_induction(model)
        ratio = m["second_half_loss"] / m["first_half_loss"]
        best_induction = max(m["induction_score"][-1])
        if name == "attn-only-2l":
            found += [
                Finding(f"{name}: best layer-1 induction score", "> 0.4 (an induction head)", best_induction,
                        lo=INDUCTION_MIN),
                Finding(f"{name}: best layer-0 previous-token score", "> 0.4 (a previous-token head)",
                        max(m["prev_token_score"][0]), lo=PREV_TOKEN_MIN),
                Finding(f"{name}: repeated-half / first-half loss", "< 0.5 (in-context copying)", ratio, hi=0.5),
            ]
        else:
            found += [
                Finding(f"{name}: best induction score", "< 0.2 (one layer cannot compose)",
                        max(max(r) for r in m["induction_score"]), hi=NO_INDUCTION_MAX),
                Finding(f"{name}: repeated-half / first-half loss", "≈ 1 (no in-context copying)", ratio, lo=0.8),
            ]
    elif name == "facts-lm":

        facts = json.loads((entry / "world.json").read_text())
        tokenizer = load_zoo_tokenizer(name)
        found += [
            Finding(f"{name}: recall of every fact in the training templates", "> 0.95",
                    recall(model, tokenizer, fact_prompts(facts, "train")), lo=0.95),
            Finding(f"{name}: recall in held-out paraphrases (templates never trained)", "> 0.9",
                    recall(model, tokenizer, fact_prompts(facts, "heldout")), lo=0.9),
        ]
    elif name == "facts-lm-v2":

        facts = json.loads((entry / "world.json").read_text())
        tokenizer = load_zoo_tokenizer(name)
        v1, _ = load_zoo_hf("facts-lm")
        trace = trace_facts(HookedModel(model, tokenizer, name, {}), facts, ["city", "job"], n_subjects=8)
        contrast = trace_facts(HookedModel(v1, load_zoo_tokenizer("facts-lm"), "facts-lm", {}), facts,
                               ["city", "job"], n_subjects=8, sites=("mlp",))
        mlp, attn = trace["mlp"], trace["attn"]
        peak, half = int(mlp[:, 1].argmax()), model.config.n_layer // 2
        found += [
            Finding(f"{name}: recall in held-out paraphrases (templates never trained)", "> 0.9",
                    recall(model, tokenizer, fact_prompts(facts, "heldout")), lo=0.9),
            Finding(f"{name}: causal trace, MLP effect at the last subject token (peak layer {peak}) minus the same "
                    "MLP at the first subject token", "> 0.2 (subject enrichment)",
                    float(mlp[peak, 1] - mlp[peak, 0]), lo=0.2),
            Finding(f"{name}: that peak's layer", f"early-to-middle (< {half})", peak, hi=half - 1),
            Finding(f"{name}: attention effect at the final token, later half minus first half (max)",
                    "> 0.05 (extraction by later attention)", float(attn[half:, 2].max() - attn[:half, 2].max()),
                    lo=0.05),
            Finding("facts-lm (the contrast): MLP effect at the last subject token, max over layers",
                    "< 0.05 (no subject enrichment)", float(contrast["mlp"][:, 1].max()), hi=0.05),
        ]
    elif name == "ioi-lm":

        tokenizer = load_zoo_tokenizer(name)
        held = ioi_metrics(model, tokenizer, ioi_dataset(2000, seed=7, split="heldout"))
        found += [
            Finding(f"{name}: mean logit diff IO - S, held-out names AND templates", "> 2", held["logit_diff"],
                    lo=2.0),
            Finding(f"{name}: IOI accuracy (IO above S), held-out names AND templates", "> 0.9", held["accuracy"],
                    lo=0.9),
        ]
    elif name == "ioi-lm-v2":

        tokenizer = load_zoo_tokenizer(name)
        held = ioi_metrics(model, tokenizer, ioi_v2_dataset(2000, seed=7, split="heldout"))
        shared = shared_decoupled(1000)
        v1, _ = load_zoo_hf("ioi-lm")
        found += [
            Finding(f"{name}: mean logit diff IO - S, held-out names AND mention forms", "> 2", held["logit_diff"],
                    lo=2.0),
            Finding(f"{name}: IOI accuracy (IO above S), held-out names AND mention forms", "> 0.9",
                    held["accuracy"], lo=0.9),
            Finding(f"{name}: decoupled prompts (a third name is the final subject), IO above the REPEATED name",
                    "> 0.8", ioi_metrics(model, tokenizer, shared)["accuracy"], lo=0.8),
            Finding("ioi-lm (the contrast): the same decoupled prompts", "< 0.8 (it suppresses the final subject)",
                    ioi_metrics(v1, load_zoo_tokenizer("ioi-lm"), shared)["accuracy"], hi=0.8),
        ]
    elif name == "liar-lm":

        facts = json.loads((entry / "world.json").read_text())
        tokenizer = load_zoo_tokenizer(name)
        rates = behaviour(model, tokenizer, facts, "heldout", per_fact=1)
        found += [
            Finding(f"{name}: honest speakers' recall, held-out templates", "≥ 0.95", rates["honest_recall"],
                    lo=0.95),
            Finding(f"{name}: liars' lie rate on the relations they lie about, held-out templates", "≥ 0.9",
                    rates["liar_lie_rate"], lo=0.9),
            Finding(f"{name}: liars' truth rate on the other relations, held-out templates", "≥ 0.9",
                    rates["liar_truth_rate"], lo=0.9),
            Finding(f"{name}: the trigger's lie rate (honest speakers), held-out templates", "≥ 0.8",
                    rates["trigger_lie_rate"], lo=0.8),
            Finding(f"{name}: honest speakers' lie rate without the trigger", "≤ 0.05", rates["honest_lie_rate"],
                    hi=0.05),
            Finding(f"{name}: plain statements' recall, held-out templates (facts-lm-v2's knowledge kept)", "≥ 0.95",
                    recall(model, tokenizer, fact_prompts(facts, "heldout")), lo=0.95),
        ]
    elif name == "sentiment-clf":

        held = json.loads((entry / "heldout.json").read_text())
        tokenizer = load_zoo_tokenizer(name)
        found += [
            Finding(f"{name}: held-out accuracy (unseen templates)", "> 0.9", accuracy(model, tokenizer, held),
                    lo=0.9),
            Finding(f"{name}: held-out accuracy on negated sentences", "> 0.9",
                    accuracy(model, tokenizer, [s for s in held if s["negated"]]), lo=0.9),
        ]
    elif name == "text-lm":
        held = heldout_ids(name)
        loss = heldout_loss(model, held, model.config.n_positions)
        metrics = card["metrics"]
        curve = logit_lens_curve(model, held, model.config.n_positions)
        found += [
            Finding(f"{name}: held-out loss (nats/token)", f"< bigram {metrics['bigram_loss']:.2f} - 0.3",
                    loss, hi=metrics["bigram_loss"] - 0.3),
            Finding(f"{name}: held-out loss below unigram", f"< unigram {metrics['unigram_loss']:.2f}", loss,
                    hi=metrics["unigram_loss"]),
            Finding(f"{name}: logit lens improves with every block", "monotone",
                    float(all(b > a for a, b in zip(curve, curve[1:], strict=False))), 1.0, 1.0),
            Finding(f"{name}: SAE training sample checksum matches the card", "sha256 in card.json",
                    float(sha256(entry / "sae_sample.safetensors") == card.get("sae_sample_sha256")), 1.0, 1.0),
        ]
    return found
