"""Every chapter-02 check: the reference passes, a correct alternative passes, plausible mistakes fail with
their specific hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_testing import CheckTester
from mechinterp.course.toolkit.model import patch
from torch import nn

T = CheckTester("probing")
CH, CHECKS = T.chapter, T.checks
assert_passes, assert_fails = T.passes, T.fails



def test_reference_passes_every_check(ref):
    T.reference_passes(ref)


# ------------------------------------------------------------------------------------ collect_residuals


def collect_variant(names_of, dim=1, first_batch_only=False):
    def collect(model, tokens, batch_size):
        names = names_of(model)
        chunks = []
        for start in range(0, len(tokens), batch_size):
            _, cache = model.run_with_cache(tokens[start : start + batch_size], names_filter=names)
            chunks.append(torch.stack([cache[n] for n in names]))
            if first_batch_only:
                break
        return torch.cat(chunks, dim=dim)

    return collect


def pre_only(m):
    return [f"blocks.{l}.hook_resid_pre" for l in range(m.n_layers)]


def post_only(m):
    return [f"blocks.{l}.hook_resid_post" for l in range(m.n_layers)]


def pre_and_final(m):
    return pre_only(m) + [f"blocks.{m.n_layers - 1}.hook_resid_post"]


@pytest.mark.parametrize("fn, hint", [
    (collect_variant(pre_only), "n_layers + 1 depths"),
    (collect_variant(post_only), "ENTERING block 0"),
    (collect_variant(pre_and_final, dim=0), "batch axis"),
    (collect_variant(pre_and_final, first_batch_only=True), "every batch"),
])
def test_collect_residuals_mistakes(fn, hint):
    assert_fails("collect_residuals", fn, hint)


def test_collect_residuals_alternative():
    def alt(model, tokens, batch_size):  # everything in one run, then the hook_embed + hook_pos_embed route
        _, cache = model.run_with_cache(tokens)
        first = cache["hook_embed"] + cache["hook_pos_embed"]
        rest = [cache[f"blocks.{l}.hook_resid_post"] for l in range(model.n_layers)]
        return torch.stack([first, *rest])

    assert_passes("collect_residuals", alt)


# ---------------------------------------------------------------------------------------- quote_labels


def quotes_variant(boundary=True, per_token=False, reset=True, flip=False, marks='"'):
    def labels(str_tokens):
        out, n = [], 0
        for s in str_tokens:
            if reset and s == "<|endoftext|>":
                n = 0
            inside = (n % 2) if not flip else 1 - n % 2
            count = sum(s.count(m) for m in marks)
            out.append(-1 if boundary and count else inside)
            n += min(1, count) if per_token else count
        return torch.tensor(out)

    return labels


@pytest.mark.parametrize("fn, hint", [
    (quotes_variant(boundary=False), "boundary"),
    (quotes_variant(per_token=True), "CHARACTERS"),
    (quotes_variant(reset=False), "reset the count"),
    (quotes_variant(flip=True), "ODD"),
    (quotes_variant(marks="\"'"), "apostrophe"),
])
def test_quote_labels_mistakes(fn, hint):
    assert_fails("quote_labels", fn, hint)


def test_quote_labels_alternative():
    def alt(str_tokens):  # prefix sums of quote counts per document
        counts = torch.tensor([s.count('"') for s in str_tokens])
        out = torch.empty(len(str_tokens), dtype=torch.long)
        start = 0
        docs = [i for i, s in enumerate(str_tokens) if s == "<|endoftext|>"] + [len(str_tokens)]
        for end in docs:
            seg = counts[start:end]
            before = seg.cumsum(0) - seg
            out[start:end] = before % 2
            start = end
        has = torch.tensor(['"' in s for s in str_tokens])
        return torch.where(has, -1, out)

    assert_passes("quote_labels", alt)


# ------------------------------------------------------------------------------------------ group_split


def split_tokens(groups, fractions, seed):
    r = torch.rand(len(groups), generator=torch.Generator().manual_seed(seed))
    return (r > fractions[0]).long() + (r > fractions[0] + fractions[1]).long()


def split_unseeded(groups, fractions, seed):
    ids = groups.unique()
    order = ids[torch.randperm(len(ids))]
    n_tr, n_va = round(fractions[0] * len(ids)), round(fractions[1] * len(ids))
    table = {int(g): 0 if i < n_tr else 1 if i < n_tr + n_va else 2 for i, g in enumerate(order)}
    return torch.tensor([table[int(g)] for g in groups])


def split_in_order(groups, fractions, seed):
    ids = groups.unique()
    n_tr, n_va = round(fractions[0] * len(ids)), round(fractions[1] * len(ids))
    table = {int(g): 0 if i < n_tr else 1 if i < n_tr + n_va else 2 for i, g in enumerate(ids)}
    return torch.tensor([table[int(g)] for g in groups])


def split_by_example_share(groups, fractions, seed):
    ids = groups.unique()
    order = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    sizes = {int(g): int((groups == g).sum()) for g in ids}
    table, seen = {}, 0
    for g in order.tolist():
        share = seen / len(groups)
        table[g] = 0 if share < fractions[0] else 1 if share < fractions[0] + fractions[1] else 2
        seen += sizes[g]
    return torch.tensor([table[int(g)] for g in groups])


def split_sized(sizes):
    def split(groups, fractions, seed):
        ids = groups.unique()
        order = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
        n_tr, n_va = sizes(fractions, len(ids))
        table = {int(g): 0 if i < n_tr else 1 if i < n_tr + n_va else 2 for i, g in enumerate(order)}
        return torch.tensor([table[int(g)] for g in groups])

    return split


@pytest.mark.parametrize("fn, hint", [
    (split_sized(lambda f, n: (int(f[0] * n), int(f[1] * n))), "do not truncate"),
    (split_sized(lambda f, n: (round(f[0] * n), round((f[0] + f[1]) * n) - round(f[0] * n))), "cumulative"),
    (split_tokens, "different splits"),
    (split_unseeded, "same seed gave a different split"),
    (split_in_order, "seeds 7 and 8 gave the same split"),
    (split_by_example_share, "shares of GROUPS"),
])
def test_group_split_mistakes(fn, hint):
    assert_fails("group_split", fn, hint)


def test_group_split_alternative():
    def alt(groups, fractions, seed):  # NumPy's generator: a different shuffle, equally correct
        ids = np.unique(groups.numpy())
        order = np.random.default_rng(seed).permutation(ids)
        n_tr, n_va = round(fractions[0] * len(ids)), round(fractions[1] * len(ids))
        which = dict.fromkeys(order[:n_tr].tolist(), 0) | dict.fromkeys(order[n_tr : n_tr + n_va].tolist(), 1)
        return torch.tensor([which.get(int(g), 2) for g in groups])

    assert_passes("group_split", alt)


# ------------------------------------------------------------------------------------ majority_accuracy


@pytest.mark.parametrize("fn, hint", [
    (lambda tr, te: float((te == torch.bincount(te).argmax()).float().mean()), "TRAINING labels"),
    (lambda tr, te: int(torch.bincount(tr).argmax()), "not the majority label"),
    (lambda tr, te: float((tr == torch.bincount(tr).argmax()).float().mean()), "score it on y_test"),
])
def test_majority_accuracy_mistakes(fn, hint):
    assert_fails("majority_accuracy", fn, hint)


def test_majority_accuracy_alternative():
    from collections import Counter

    def alt(y_train, y_test):
        label = Counter(y_train.tolist()).most_common(1)[0][0]
        return sum(int(y) == label for y in y_test.tolist()) / len(y_test)

    assert_passes("majority_accuracy", alt)


# ----------------------------------------------------------------------------------- train_linear_probe


def probe_variant(bias=True, standardise=True, fold=True, transpose=False, adam_raw=False, loss="ce"):
    def train(x, y, n_classes, l2=1e-3, steps=100):
        mu, sd = (x.mean(0), x.std(0) + 1e-6) if standardise else (torch.zeros(x.shape[1]), torch.ones(x.shape[1]))
        z = (x - mu) / sd
        W = torch.zeros(x.shape[1], n_classes, requires_grad=True)
        b = torch.zeros(n_classes, requires_grad=bias)

        def loss_fn():
            logits = z @ W + b
            if loss == "double_softmax":  # cross_entropy already applies log-softmax
                logits = logits.softmax(-1)
            if loss == "mse":
                return ((logits.softmax(-1) - nn.functional.one_hot(y, n_classes)) ** 2).sum(-1).mean() \
                    + l2 * (W**2).sum()
            return nn.functional.cross_entropy(logits, y) + l2 * (W**2).sum()

        if adam_raw:
            opt = torch.optim.Adam([W, b] if bias else [W], lr=0.05)
            for _ in range(steps):
                opt.zero_grad()
                loss_fn().backward()
                opt.step()
        else:
            opt = torch.optim.LBFGS([W, b] if bias else [W], max_iter=steps, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                loss = loss_fn()
                loss.backward()
                return loss

            opt.step(closure)
        W_out, b_out = W.detach(), b.detach()
        if fold:
            W_out = W_out / sd[:, None]
            b_out = b_out - mu @ W_out
        return (W_out.T if transpose else W_out), b_out

    return train


@pytest.mark.parametrize("fn, hint", [
    (probe_variant(bias=False), "bias"),
    (probe_variant(standardise=False, adam_raw=True), "standardise"),
    (probe_variant(fold=False), "STANDARDISED inputs"),
    (probe_variant(transpose=True), "transposed"),
    (probe_variant(loss="mse"), "not an MSE on probabilities"),
])
def test_train_linear_probe_mistakes(fn, hint):
    assert_fails("train_linear_probe", fn, hint)


def test_train_linear_probe_alternative():
    def alt(x, y, n_classes, l2=1e-3, steps=100):  # Adam on standardised features, many small steps
        mu, sd = x.mean(0), x.std(0) + 1e-6
        z = (x - mu) / sd
        lin = nn.Linear(x.shape[1], n_classes)
        opt = torch.optim.Adam(lin.parameters(), lr=0.1)
        for _ in range(150):
            opt.zero_grad()
            (nn.functional.cross_entropy(lin(z), y) + l2 * (lin.weight**2).sum()).backward()
            opt.step()
        W = lin.weight.detach().T / sd[:, None]
        return W, lin.bias.detach() - mu @ W

    assert_passes("train_linear_probe", alt)


# -------------------------------------------------------------------------------------- control_labels


def control_variant(kind):
    def control(token_ids, labels, seed):
        g = torch.Generator().manual_seed(seed)
        lab = labels >= 0
        dist = torch.bincount(labels[lab]).float()
        n_types = int(token_ids.max()) + 1
        if kind == "per_occurrence":
            draw = torch.multinomial(dist / dist.sum(), len(token_ids), replacement=True, generator=g)
            return torch.where(lab, draw, -1)
        if kind == "uniform":
            per_type = torch.randint(0, len(dist), (n_types,), generator=g)
        elif kind == "with_unlabelled":
            per_type = torch.multinomial(torch.bincount(labels + 1).float(), n_types, replacement=True,
                                         generator=g) - 1
        elif kind == "unseeded":
            per_type = torch.multinomial(dist / dist.sum(), n_types, replacement=True)
        if kind == "task":
            return labels.clone()
        return torch.where(lab, per_type[token_ids], -1)

    return control


@pytest.mark.parametrize("kind, hint", [
    ("per_occurrence", "ONE label per type"),
    ("uniform", "uniformly"),
    ("task", "these are the task labels"),
    ("with_unlabelled", "LABELLED tokens only"),
    ("unseeded", "same seed gave a different control task"),
])
def test_control_labels_mistakes(kind, hint):
    assert_fails("control_labels", control_variant(kind), hint)


def test_control_labels_alternative():
    def alt(token_ids, labels, seed):  # NumPy's generator and a dict per type
        rng = np.random.default_rng(seed)
        lab = labels[labels >= 0].numpy()
        classes, counts = np.unique(lab, return_counts=True)
        per_type = {}
        out = []
        for t, y in zip(token_ids.tolist(), labels.tolist(), strict=True):
            if t not in per_type:
                per_type[t] = int(rng.choice(classes, p=counts / counts.sum()))
            out.append(per_type[t] if y >= 0 else -1)
        return torch.tensor(out)

    assert_passes("control_labels", alt)


# ----------------------------------------------------------------------------------- probe_selectivity


def selectivity_variant(kind):
    def sel(fit, x_train, x_test, task_train, task_test, control_train, control_test):
        if kind == "on_train":
            t = float((fit(x_train, task_train)(x_train) == task_train).float().mean())
            c = float((fit(x_train, control_train)(x_train) == control_train).float().mean())
        elif kind == "swapped":
            t = float((fit(x_train, control_train)(x_test) == task_test).float().mean())
            c = float((fit(x_train, task_train)(x_test) == control_test).float().mean())
        else:
            t = float((fit(x_train, task_train)(x_test) == task_test).float().mean())
            c = float((fit(x_train, control_train)(x_test) == control_test).float().mean())
        return t, c, (c - t if kind == "sign" else t - c)

    return sel


@pytest.mark.parametrize("kind, hint", [
    ("on_train", "TEST examples"),
    ("sign", "MINUS"),
    ("swapped", "control probe on the control labels"),
])
def test_probe_selectivity_mistakes(kind, hint):
    assert_fails("probe_selectivity", selectivity_variant(kind), hint)


def test_probe_selectivity_alternative():
    def alt(fit, x_train, x_test, task_train, task_test, control_train, control_test):
        scores = []
        for y_tr, y_te in ((task_train, task_test), (control_train, control_test)):
            pred = fit(x_train, y_tr)(x_test)
            scores.append(sum(int(a == b) for a, b in zip(pred.tolist(), y_te.tolist(), strict=True)) / len(y_te))
        return scores[0], scores[1], scores[0] - scores[1]

    assert_passes("probe_selectivity", alt)


# ----------------------------------------------------------------------------------------- project_out


@pytest.mark.parametrize("fn, hint", [
    (lambda x, d: x - (x @ d)[..., None] * d, "normalise the direction"),
    (lambda x, d: (x @ (d / d.norm()))[..., None] * (d / d.norm()), "ALONG"),
    (lambda x, d: x - d / d.norm(), "not the direction itself"),
])
def test_project_out_mistakes(fn, hint):
    assert_fails("project_out", fn, hint)


def test_project_out_alternative():
    def alt(x, direction):  # the projection matrix I - u u^T
        u = direction / torch.linalg.vector_norm(direction)
        return x @ (torch.eye(len(u)) - torch.outer(u, u))

    assert_passes("project_out", alt)


# -------------------------------------------------------------------------------- loss_with_direction_removed


def removed_variant(normalise=True, post=False, mean=False, shift=True):
    def loss(model, tokens, layer, direction):
        u = direction / direction.norm() if normalise else direction
        if layer < model.n_layers and not post:
            name = f"blocks.{layer}.hook_resid_pre"
        else:
            name = f"blocks.{min(layer, model.n_layers - 1)}.hook_resid_post"
        with model.hooks([(name, lambda a, hp: a - (a @ u)[..., None] * u)]):
            logits = model(tokens)
        targets = tokens[:, 1:] if shift else tokens[:, :-1]
        out = -logits[:, :-1].log_softmax(-1).gather(-1, targets[..., None])[..., 0]
        return out.mean() if mean else out

    return loss


@pytest.mark.parametrize("fn, hint", [
    (removed_variant(normalise=False), "unit length"),
    (removed_variant(post=True), "ENTERING block"),
    (removed_variant(mean=True), "not the mean"),
    (removed_variant(shift=False), "shift the targets"),
])
def test_loss_with_direction_removed_mistakes(fn, hint):
    assert_fails("loss_with_direction_removed", fn, hint)


def test_loss_with_direction_removed_alternative():
    def alt(model, tokens, layer, direction):  # the toolkit's patch("apply") and F.cross_entropy
        u = direction / direction.norm()
        name = (f"blocks.{layer}.hook_resid_pre" if layer < model.n_layers
                else f"blocks.{model.n_layers - 1}.hook_resid_post")
        logits = model.run_with_hooks(tokens, [(name, patch("apply", lambda a: a - torch.outer(a @ u, u)
                                                             .view(a.shape) if a.ndim == 2 else
                                                             a - (a @ u).unsqueeze(-1) * u))])
        return nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")

    assert_passes("loss_with_direction_removed", alt)


# ---------------------------------------------------------------------------------------------- drills


@pytest.mark.parametrize("name, right, wrong", [
    ("drill_accuracy_is_not_use", "c", {"a": "decodable is not used", "b": "cannot tell where",
                                        "d": "linearly decodable"}),
    ("drill_selectivity", "b", {"a": "memorise", "c": "untrained network", "d": "leakage"}),
    ("drill_peak_layers", "a", {"b": "clearest early", "c": "needs context", "d": "attending to other"}),
])
def test_drills(name, right, wrong):
    assert_passes(name, lambda: right.upper())
    for letter, hint in wrong.items():
        assert_fails(name, lambda letter=letter: letter, hint)
    assert_fails(name, lambda: "e", "one of the letters")


# ------------------------------------------------------------------------------------ hold_out_types


def held_variant(pool="test", drop_train=True, drop_test=True, floor=False):
    def hold_out_types(types, split, fraction, seed):
        pool_types = types[split == 2].unique() if pool == "test" else types.unique()
        order = torch.randperm(len(pool_types), generator=torch.Generator().manual_seed(seed))
        k = int(fraction * len(pool_types)) if floor else round(fraction * len(pool_types))
        held = torch.isin(types, pool_types[order[:k]])
        out = split.clone()
        if drop_test:
            out[(split == 2) & ~held] = -1
        if drop_train:
            out[(split != 2) & held] = -1
        return out

    return hold_out_types


@pytest.mark.parametrize("fn, hint", [
    (held_variant(pool="all"), "drawn from the TEST examples' types"),
    (held_variant(drop_train=False), "never see a held-out type"),
    (held_variant(drop_test=False), "only examples of held-out types"),
    (held_variant(floor=True), "not int(...)"),
])
def test_hold_out_types_mistakes(fn, hint):
    assert_fails("hold_out_types", fn, hint)


def test_hold_out_types_alternative():
    def hold_out_types(types, split, fraction, seed):  # python sets and a list comprehension
        test_types = sorted(set(types[split == 2].tolist()))
        order = torch.randperm(len(test_types), generator=torch.Generator().manual_seed(seed)).tolist()
        held = {test_types[i] for i in order[: round(fraction * len(test_types))]}
        return torch.tensor([(-1 if (t in held) != (s == 2) else s) for t, s in zip(types.tolist(), split.tolist(),
                                                                                     strict=True)])

    assert_passes("hold_out_types", hold_out_types)
