"""Chapter 02 reference: probing (Alain & Bengio 2016; Hewitt & Liang 2019; Belinkov 2022; Ravfogel et al. 2020).

Conventions: residual streams are [n_layers + 1, batch, pos, d_model] (entering each block, then leaving the
last); labels are long tensors with -1 for "no label here"; splits are long tensors with 0 = train,
1 = validation, 2 = test; a linear probe is (W [d_model, n_classes], b [n_classes]) acting on RAW activations,
logits = x @ W + b.
"""

from __future__ import annotations

import torch
from mechinterp.course.toolkit.activations import residual_stream
from mechinterp.course.toolkit.findings import Finding
from mechinterp.course.toolkit.labels import POS_CLASSES, bracket_labels, load_pos_lexicon, pos_labels, vocab_strings
from mechinterp.course.toolkit.model import HookedModel, load_model, randomly_initialised
from mechinterp.course.toolkit.probes import memorisation_accuracy, mlp_probe, subsample
from mechinterp.course.toolkit.zoo import heldout_ids
from torch import Tensor, nn

# --------------------------------------------------------------------------------------- exercises


def collect_residuals(model: HookedModel, tokens: Tensor, batch_size: int) -> Tensor:
    """The residual stream at every depth for every token, computed batch_size sequences at a time.

    Depth l < n_layers is blocks.{l}.hook_resid_pre (depth 0 = the embeddings); depth n_layers is
    blocks.{n_layers - 1}.hook_resid_post. tokens: [batch, pos]. Returns [n_layers + 1, batch, pos, d_model].
    """
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(model.n_layers)]
    names.append(f"blocks.{model.n_layers - 1}.hook_resid_post")
    chunks = []
    for start in range(0, len(tokens), batch_size):
        _, cache = model.run_with_cache(tokens[start : start + batch_size], names_filter=names)
        chunks.append(torch.stack([cache[n] for n in names]))
    return torch.cat(chunks, dim=1)


def quote_labels(str_tokens: list[str]) -> Tensor:
    """For a stream of token strings: 1 if the token is inside a double-quoted span, 0 if outside, -1 if the
    token itself contains a '"' (it is a boundary, neither inside nor outside).

    Inside = an odd number of '"' characters occur in the tokens before it, counting from the most recent
    "<|endoftext|>" token (documents are independent). Returns [len(str_tokens)] long.
    """
    out = torch.full((len(str_tokens),), -1, dtype=torch.long)
    n_quotes = 0
    for i, s in enumerate(str_tokens):
        if s == "<|endoftext|>":
            n_quotes = 0
        if '"' not in s:
            out[i] = n_quotes % 2
        n_quotes += s.count('"')
    return out


def group_split(groups: Tensor, fractions: tuple[float, float, float], seed: int) -> Tensor:
    """Assign whole groups (e.g. sentences or text windows) at random to train (0), validation (1) and test (2).

    groups: [n] group id of each example. fractions: the share of GROUPS in each split (sums to 1); split
    sizes are round(fraction * n_groups) for train and validation, the rest test. The same seed gives the same
    split. Returns [n] long.
    """
    ids = groups.unique()
    order = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    n_train, n_val = round(fractions[0] * len(ids)), round(fractions[1] * len(ids))
    split_of_group = torch.full((int(ids.max()) + 1,), 2, dtype=torch.long)
    split_of_group[order[:n_train]] = 0
    split_of_group[order[n_train : n_train + n_val]] = 1
    return split_of_group[groups]


def hold_out_types(types: Tensor, split: Tensor, fraction: float, seed: int) -> Tensor:
    """Make the test set about word TYPES the probe never saw in training.

    types: [n] token-type (vocabulary id) of each example; split: [n] 0/1/2 (e.g. from group_split). Take the
    distinct types of the TEST examples in sorted order, shuffle them with torch.randperm and a generator seeded
    by `seed`, and hold out the first round(fraction * n_test_types). Return a copy of split in which test
    examples of other types, and train/validation examples of held-out types, are -1 (unused). Returns [n] long.
    """
    test_types = types[split == 2].unique()
    order = torch.randperm(len(test_types), generator=torch.Generator().manual_seed(seed))
    held = torch.isin(types, test_types[order[: round(fraction * len(test_types))]])
    out = split.clone()
    out[(split == 2) & ~held] = -1
    out[(split != 2) & held] = -1
    return out


def majority_accuracy(y_train: Tensor, y_test: Tensor) -> float:
    """Accuracy on y_test of always predicting the most frequent label of y_train (the baseline every probe
    must beat). Labels are non-negative ints; where labels tie for most frequent, any of them will do. Returns
    a float."""
    majority = torch.bincount(y_train).argmax()
    return float((y_test == majority).float().mean())


def train_linear_probe(x: Tensor, y: Tensor, n_classes: int, l2: float = 1e-3,
                       steps: int = 100) -> tuple[Tensor, Tensor]:
    """Multinomial logistic regression trained to convergence on standardised features.

    Standardise each feature with the training mean and std, minimise mean cross-entropy(z @ W + b, y) +
    l2 * ||W||^2 over the standardised z (full batch; L-BFGS with `steps` iterations converges), then fold
    the standardisation into the weights so that the probe acts on RAW x: logits = x @ W + b.
    x: [n, d] float; y: [n] long in [0, n_classes). Returns W [d, n_classes], b [n_classes] (no grad).
    """
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    W = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(z @ W + b, y) + l2 * (W**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    W_raw = W.detach() / sd[:, None]
    return W_raw, b.detach() - mu @ W_raw


def control_labels(token_ids: Tensor, labels: Tensor, seed: int) -> Tensor:
    """Hewitt & Liang's control task: give every token TYPE one random label, drawn from the empirical
    distribution of the labels (over labelled tokens), and label each token with its type's label.

    token_ids, labels: [n] (labels -1 = unlabelled, kept -1). The same seed gives the same control task.
    Returns [n] long.
    """
    labelled = labels >= 0
    dist = torch.bincount(labels[labelled]).float()
    n_types = int(token_ids.max()) + 1
    gen = torch.Generator().manual_seed(seed)
    type_label = torch.multinomial(dist / dist.sum(), n_types, replacement=True, generator=gen)
    return torch.where(labelled, type_label[token_ids], -1)


def probe_selectivity(fit, x_train: Tensor, x_test: Tensor, task_train: Tensor, task_test: Tensor,
                      control_train: Tensor, control_test: Tensor) -> tuple[float, float, float]:
    """Train one probe on the task labels and one on the control labels (same probe family, same inputs),
    score each on the TEST examples. fit(x, y) returns a predict function (x -> predicted labels).

    Returns (task accuracy, control accuracy, selectivity = task accuracy - control accuracy).
    """
    task_acc = float((fit(x_train, task_train)(x_test) == task_test).float().mean())
    control_acc = float((fit(x_train, control_train)(x_test) == control_test).float().mean())
    return task_acc, control_acc, task_acc - control_acc


def project_out(x: Tensor, direction: Tensor) -> Tensor:
    """Remove the component of x along `direction` (any length, not necessarily unit norm).

    x: [..., d]; direction: [d]. Returns x - (x . u) u with u = direction / ||direction||.
    """
    u = direction / direction.norm()
    return x - (x @ u)[..., None] * u


def loss_with_direction_removed(model: HookedModel, tokens: Tensor, layer: int, direction: Tensor) -> Tensor:
    """Per-token next-token loss with `direction` projected out of the residual stream at depth `layer`
    (at every position): blocks.{layer}.hook_resid_pre, or the final blocks.{n_layers - 1}.hook_resid_post
    when layer == n_layers.

    tokens: [batch, pos]. Returns [batch, pos - 1] (nats; position i predicts tokens[:, i + 1]).
    """
    if layer < model.n_layers:
        name = f"blocks.{layer}.hook_resid_pre"
    else:
        name = f"blocks.{model.n_layers - 1}.hook_resid_post"
    with model.hooks([(name, lambda act, hp: project_out(act, direction))]):
        logits = model(tokens)
    return -logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]


# ------------------------------------------------------------------------------------------ drills


def drill_accuracy_is_not_use() -> str:
    """Drill: a probe decodes a property at 95% from layer 2. What follows? Return the letter."""
    return "c"


def drill_selectivity() -> str:
    """Drill: which probe result is the most convincing evidence of a representation? Return the letter."""
    return "b"


def drill_peak_layers() -> str:
    """Drill: where do a lexical and a contextual property peak? Return the letter."""
    return "a"


# ------------------------------------------------------------------------------- chapter helpers

PROPERTIES = ("part of speech", "inside quotes", "inside brackets")
N_CLASSES = {"part of speech": len(POS_CLASSES), "inside quotes": 2, "inside brackets": 2}
MIN_CONTEXT = 16  # contextual labels need context the model can see: skip each window's first positions


def probing_dataset(model: HookedModel, label_quotes=quote_labels) -> dict:
    """The chapter's data: held-out text cut into windows of n_ctx tokens, three label sets, groups (windows).

    Labels are computed on the whole held-out token stream (so a quote opened in the previous window is
    known), then cut into the same windows; contextual labels are dropped for the first MIN_CONTEXT positions
    of each window, where the model cannot see the context that decides them."""
    ids = heldout_ids(model.name.removeprefix("zoo/"))
    n = len(ids) // model.n_ctx
    ids = ids[: n * model.n_ctx]
    vocab = vocab_strings(model.tokenizer)
    str_tokens = [vocab[i] for i in ids.tolist()]
    labels = {
        "part of speech": pos_labels(str_tokens, load_pos_lexicon(model.name.removeprefix("zoo/"))),
        "inside quotes": label_quotes(str_tokens),
        "inside brackets": bracket_labels(str_tokens),
    }
    labels = {k: v.view(n, model.n_ctx).clone() for k, v in labels.items()}
    for k in ("inside quotes", "inside brackets"):
        labels[k][:, :MIN_CONTEXT] = -1
    return {"tokens": ids.view(n, model.n_ctx), "labels": labels,
            "groups": torch.arange(n)[:, None].expand(n, model.n_ctx)}


def linear_fit(x: Tensor, y: Tensor, n_classes: int | None = None):
    """fit(x, y) -> predict, with the reference linear probe."""
    W, b = train_linear_probe(x, y, n_classes or int(y.max()) + 1)
    return lambda z: (z @ W + b).argmax(-1)


def layer_sweep(resid: Tensor, labels: Tensor, split: Tensor, n_classes: int, fit=linear_fit,
                max_train: int = 8000) -> Tensor:
    """[n_layers + 1] test accuracy of a probe trained at each depth (train split -> test split). Each probe
    trains on at most `max_train` labelled training tokens (the same random subset at every depth)."""
    train = subsample((labels >= 0) & (split == 0), max_train)
    test = (labels >= 0) & (split == 2)
    accs = []
    for acts in resid:
        predict = fit(acts[train], labels[train], n_classes)
        accs.append(float((predict(acts[test]) == labels[test]).float().mean()))
    return torch.tensor(accs)


def probe_direction(resid_layer: Tensor, labels: Tensor, split: Tensor) -> Tensor:
    """The binary linear probe's weight direction in raw residual space (class 1 minus class 0), unit norm."""
    train = (labels >= 0) & (split == 0)
    W, _ = train_linear_probe(resid_layer[train], labels[train], 2)
    d = W[:, 1] - W[:, 0]
    return d / d.norm()


def closing_quote_targets(tokens: Tensor, quotes: Tensor, vocab: list[str]) -> Tensor:
    """[batch, pos - 1] True where the model, inside a quotation, must predict a token carrying the closing '"'."""
    has_quote = torch.tensor(['"' in s for s in vocab])
    return has_quote[tokens[:, 1:]] & (quotes[:, :-1] == 1)


def direction_ablation_effects(model: HookedModel, tokens: Tensor, layer: int, direction: Tensor, targets: Tensor,
                               n_random: int = 8, seed: int = 0) -> dict[str, float]:
    """Mean loss increase on `targets` and on all other predictions when the probe direction, or a random
    direction (mean over n_random), is projected out at `layer`."""
    with torch.no_grad():
        logits = model(tokens)
        base = -logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]
        probe = loss_with_direction_removed(model, tokens, layer, direction) - base
        gen = torch.Generator().manual_seed(seed)
        rand = torch.stack([loss_with_direction_removed(model, tokens, layer, v) - base
                            for v in torch.randn(n_random, model.d_model, generator=gen)])
    return {"probe_targets": float(probe[targets].mean()), "random_targets": float(rand[:, targets].mean()),
            "probe_others": float(probe[~targets].mean()), "random_others": float(rand[:, ~targets].mean()),
            "n_targets": int(targets.sum())}


# ------------------------------------------------------------------------------- chapter findings

CAUSAL_LAYER = 3  # the depth where the quote probe peaks in text-lm (blocks.3.hook_resid_pre)
SELECTIVITY_LAYER = 1


@torch.no_grad()
def findings(device: str | torch.device = "cpu") -> list[Finding]:
    """Probe text-lm and a randomly initialised copy; control tasks; the causal test of the quote direction."""
    model = load_model("zoo/text-lm", device)
    data = probing_dataset(model)
    tokens, labels = data["tokens"], data["labels"]
    split = group_split(data["groups"].reshape(-1), (0.7, 0.15, 0.15), seed=0).view(tokens.shape)
    resid = residual_stream(model, tokens, progress=False)
    rand_resid = residual_stream(randomly_initialised(model, 0), tokens, progress=False)
    acc, rand_acc, majority = {}, {}, {}
    for prop in PROPERTIES:
        lab = labels[prop]
        acc[prop] = layer_sweep(resid, lab, split, N_CLASSES[prop])
        rand_acc[prop] = layer_sweep(rand_resid, lab, split, N_CLASSES[prop])
        majority[prop] = majority_accuracy(lab[(lab >= 0) & (split == 0)], lab[(lab >= 0) & (split == 2)])
    pos = labels["part of speech"]
    control = control_labels(tokens.reshape(-1), pos.reshape(-1), seed=0).view(tokens.shape)
    train, test = (pos >= 0) & (split == 0), (pos >= 0) & (split == 2)
    x = resid[SELECTIVITY_LAYER]
    sel = {name: probe_selectivity(lambda a, b, f=f: f(a, b, N_CLASSES["part of speech"]), x[train], x[test],
                                   pos[train], pos[test], control[train], control[test])
           for name, f in (("linear", linear_fit), ("MLP", mlp_probe),
                           ("MLP, seed 1", lambda a, b, n: mlp_probe(a, b, n, seed=1)))}
    quotes = labels["inside quotes"]
    direction = probe_direction(resid[CAUSAL_LAYER], quotes, split)
    shuffled = quotes.flatten()[torch.randperm(quotes.numel(), generator=torch.Generator().manual_seed(0))]
    shuffled_direction = probe_direction(resid[CAUSAL_LAYER], shuffled.view(quotes.shape), split)
    held = split[:, 0] > 0  # validation + test windows: text the probe never saw
    targets = closing_quote_targets(tokens[held], quotes[held], vocab_strings(model.tokenizer))
    keep = targets.any(-1)  # only windows with a closing quote to predict (the others only cost time)
    held[held.clone()] = keep
    targets = targets[keep]
    effect, shuffled_effect = (direction_ablation_effects(model, tokens[held].to(model.device), CAUSAL_LAYER,
                                                          d.to(model.device), targets.to(model.device))
                               for d in (direction, shuffled_direction))
    best = {p: int(acc[p].argmax()) for p in PROPERTIES}
    rand_best = {p: int(rand_acc[p].argmax()) for p in PROPERTIES}
    # half of the test split's word types held out, two draws averaged (each test set is ~1,000 tokens)
    type_splits = [hold_out_types(tokens.reshape(-1), split.reshape(-1), 0.5, seed=s).view(split.shape)
                   for s in (0, 1)]

    def type_sweep(stream):
        return torch.stack([layer_sweep(stream, pos, ts, N_CLASSES["part of speech"]) for ts in type_splits]).mean(0)

    type_acc, rand_type_acc = type_sweep(resid), type_sweep(rand_resid)
    type_split = type_splits[0]
    window_lead = float(acc["part of speech"][1:].max() - acc["part of speech"][0])
    rand_window_lead = float(rand_acc["part of speech"][1:].max() - rand_acc["part of speech"][0])
    # the contrast for the reversal: a second window split (another seed), where no word type is held out
    split2 = group_split(data["groups"].reshape(-1), (0.7, 0.15, 0.15), seed=1).view(tokens.shape)
    acc2 = layer_sweep(resid, pos, split2, N_CLASSES["part of speech"])
    window_lead2 = float(acc2[1:].max() - acc2[0])
    base = {}
    for name, sp in (("window", split), ("types", type_split)):
        tr, te = (pos >= 0) & (sp == 0), (pos >= 0) & (sp == 2)
        base[name] = (majority_accuracy(pos[tr], pos[te]), memorisation_accuracy(tokens, pos, tr, te))
    fresh = "text-lm re-initialised (same probes)"
    out = []
    for prop in PROPERTIES:
        out.append(Finding(f"{prop}: best-layer probe accuracy (depth {best[prop]}) minus majority baseline "
                           f"({majority[prop]:.3f}), at least 0.01 above the re-initialised model's",
                           "> 0 (the property is decodable, and not from any random embedding)",
                           float(acc[prop].max()) - majority[prop], lo=float(rand_acc[prop].max()) - majority[prop]
                           + 0.01, contrast=float(rand_acc[prop].max()) - majority[prop], contrast_name=fresh))
    out += [
        Finding(f"part of speech, held-out word types (half the test types, never seen by the probe; 2 draws): "
                f"best probe (depth {int(type_acc.argmax())}) minus majority ({base['types'][0]:.3f})",
                "far above: part of speech extends to unseen words", float(type_acc.max()) - base["types"][0],
                lo=0.1, contrast=float(rand_type_acc.max()) - base["types"][0], contrast_name=fresh),
        Finding("part of speech: (best of depths 1-4 minus depth 0) on held-out word types, minus the same on the "
                f"window split ({window_lead:.3f})", "> 0: the embeddings' lead is a property of the window split "
                "(audit: d0 0.72 vs d3 0.80 with types held out)",
                float(type_acc[1:].max() - type_acc[0]) - window_lead, lo=0.02, contrast=window_lead2 - window_lead,
                contrast_name="a second window split (seed 1) in place of the held-out types"),
        Finding("the same difference on the re-initialised model", "(reported: unseen types' embeddings carry "
                "nothing in ANY model, so holding types out favours context there too)",
                float(rand_type_acc[1:].max() - rand_type_acc[0]) - rand_window_lead),
        Finding("part of speech, window split: memorising each training word's label, test accuracy",
                "(reported: the baseline the window-split probe must be read against)", base["window"][1]),
        Finding("part of speech, window split: best probe minus memorising words",
                "(reported: ≈ 0 means the split cannot tell representation from memorisation)",
                float(acc["part of speech"].max()) - base["window"][1]),
        Finding("window split: depth where 'inside quotes' peaks minus depth where part of speech peaks",
                "> 0 (contextual properties form later than lexical ones)",
                best["inside quotes"] - best["part of speech"], lo=1,
                contrast=rand_best["inside quotes"] - rand_best["part of speech"], contrast_name=fresh),
        Finding(f"control task (depth {SELECTIVITY_LAYER}): MLP control accuracy minus linear control accuracy",
                "> 0 (Hewitt & Liang: MLPs memorise word types)", sel["MLP"][1] - sel["linear"][1], lo=0.05,
                contrast=sel["MLP"][0] - sel["linear"][0], contrast_name="the same on the real task"),
        Finding(f"selectivity (depth {SELECTIVITY_LAYER}): linear minus MLP",
                "> 0 (Hewitt & Liang: linear probes are more selective)", sel["linear"][2] - sel["MLP"][2], lo=0.05,
                contrast=sel["MLP, seed 1"][2] - sel["MLP"][2], contrast_name="one MLP probe minus another (seed 1)"),
        Finding(f"projecting out the quote direction at depth {CAUSAL_LAYER}: loss increase on closing-quote "
                f"predictions ÷ random direction's ({effect['n_targets']} targets)", "> 1 (the model uses it)",
                effect["probe_targets"] / max(effect["random_targets"], 1e-9), lo=2.0,
                contrast=shuffled_effect["probe_targets"] / max(shuffled_effect["random_targets"], 1e-9),
                contrast_name="a probe trained on shuffled labels"),
        Finding("same projection: loss increase on closing-quote predictions minus on all other predictions "
                "(nats)", "> 0 (a specific, not a general, effect)",
                effect["probe_targets"] - effect["probe_others"], lo=0.02,
                contrast=effect["random_targets"] - effect["random_others"], contrast_name="random directions"),
    ]
    return out
