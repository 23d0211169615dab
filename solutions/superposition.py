"""Chapter 01 reference: toy models of superposition (Elhage et al. 2022).

Conventions used throughout (and stated in every docstring the learner sees):
- many toy models ("instances") are trained at once; the instance axis comes right after the batch axis;
- W has shape [n_instances, n_hidden, n_features]: column i of W[k] is feature i's direction W_i;
- a feature is present with probability p (sparsity S = 1 - p) and then uniform on [0, 1].
"""

from __future__ import annotations

import math

import torch
from mechinterp.course.toolkit.findings import Finding
from torch import Tensor
from tqdm import tqdm

NOT_REPRESENTED, DEDICATED, SUPERPOSED = 0, 1, 2


# --------------------------------------------------------------------------------------- exercises


def feature_importance(n_instances: int, n_features: int, decay: float) -> Tensor:
    """Importance I_i = decay ** i of feature i (feature 0 is the most important, I_0 = 1).

    Every instance gets the same importances.
    Returns a float32 tensor of shape [n_instances, n_features].
    """
    powers = torch.arange(n_features, dtype=torch.float32)  # [n_features]
    return (decay**powers).repeat(n_instances, 1)  # [n_instances, n_features]


def sample_features(
    batch_size: int, feature_probability: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Draw a batch of synthetic sparse features x in [0, 1].

    Each feature of each instance is present independently with probability
    feature_probability[k, i] (its sparsity is S = 1 - p); a present feature is uniform on [0, 1],
    an absent one is exactly 0.
    feature_probability: [n_instances, n_features]. generator: optional torch.Generator on the
    same device as feature_probability (pass it to every random call).
    Returns [batch_size, n_instances, n_features] on feature_probability's device.
    """
    shape = (batch_size, *feature_probability.shape)
    device = feature_probability.device
    present = torch.rand(shape, generator=generator, device=device) < feature_probability
    values = torch.rand(shape, generator=generator, device=device)
    return torch.where(present, values, torch.zeros_like(values))


def toy_forward(W: Tensor, b: Tensor, x: Tensor, activation: str = "relu") -> Tensor:
    """The toy model x_hat = ReLU(W^T W x + b), for every instance at once.

    W: [n_instances, n_hidden, n_features]; b: [n_instances, n_features];
    x: [batch, n_instances, n_features].
    activation: "relu" (the paper's ReLU-output model) or "linear" (x_hat = W^T W x + b).
    Returns x_hat: [batch, n_instances, n_features].
    """
    h = torch.einsum("khf,bkf->bkh", W, x)  # [batch, n_instances, n_hidden]
    out = torch.einsum("khf,bkh->bkf", W, h) + b  # [batch, n_instances, n_features]
    if activation == "relu":
        return torch.relu(out)
    if activation == "linear":
        return out
    raise ValueError(f"activation must be 'relu' or 'linear', got {activation!r}")


def weighted_mse_loss(x: Tensor, x_hat: Tensor, importance: Tensor) -> Tensor:
    """Importance-weighted reconstruction loss, L = sum_k E_batch[ sum_i I_ki (x_i - x_hat_i)^2 ].

    x, x_hat: [batch, n_instances, n_features]; importance: [n_instances, n_features].
    Mean over the batch, sum over features, sum over instances (so each instance's gradient does not
    depend on how many instances are trained together). Returns a scalar tensor.
    """
    per_instance = (importance * (x - x_hat) ** 2).sum(-1).mean(0)  # [n_instances]
    return per_instance.sum()


def train_toy_models(
    importance: Tensor,
    feature_probability: Tensor,
    n_hidden: int,
    activation: str = "relu",
    steps: int = 3000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Train one toy model per instance, all instances in one batched loop.

    importance, feature_probability: [n_instances, n_features], on the device to train on.
    Initialise W ~ N(0, 2 / (n_hidden + n_features)) (Xavier-normal) and b = 0, seeded with `seed`;
    optimise weighted_mse_loss(x, toy_forward(W, b, x, activation), importance) with Adam(lr), the
    learning rate following a cosine decay to 0 over `steps` steps; draw a fresh batch from
    sample_features every step.
    Returns (W, b), detached: [n_instances, n_hidden, n_features] and [n_instances, n_features].
    """
    n_instances, n_features = importance.shape
    device = importance.device
    gen = torch.Generator(device=device).manual_seed(seed)
    std = math.sqrt(2.0 / (n_hidden + n_features))
    W = (torch.randn(n_instances, n_hidden, n_features, generator=gen, device=device) * std).requires_grad_()
    b = torch.zeros(n_instances, n_features, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([W, b], lr=lr)
    for step in tqdm(range(steps), desc="training toy models", leave=False, mininterval=1.0):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        x = sample_features(batch_size, feature_probability, generator=gen)
        loss = weighted_mse_loss(x, toy_forward(W, b, x, activation), importance)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return W.detach(), b.detach()


def feature_dimensionality(W: Tensor) -> Tensor:
    """Feature dimensionality D_i = ||W_i||^2 / sum_j (W_hat_i . W_j)^2, with W_hat_i = W_i / ||W_i||.

    W: [n_instances, n_hidden, n_features] (W_i is column i). The sum over j includes j = i.
    A feature the model does not represent (||W_i|| = 0) has D_i = 0: guard the 0/0.
    Returns [n_instances, n_features].
    """
    norms = W.norm(dim=1)  # [n_instances, n_features]
    W_hat = W / norms.clamp_min(1e-8).unsqueeze(1)  # [n_instances, n_hidden, n_features]
    overlaps = torch.einsum("khi,khj->kij", W_hat, W)  # [n_instances, i, j]: W_hat_i . W_j
    return norms**2 / (overlaps**2).sum(-1).clamp_min(1e-12)


def superposition_measure(W: Tensor) -> Tensor:
    """How much feature i shares its direction: sum over j != i of (W_hat_i . W_j)^2.

    W: [n_instances, n_hidden, n_features] (W_i is column i); W_hat_i = W_i / ||W_i||, taken as 0
    when ||W_i|| = 0. Returns [n_instances, n_features]; 0 means feature i has a direction of its own.
    """
    norms = W.norm(dim=1)  # [n_instances, n_features]
    W_hat = W / norms.clamp_min(1e-8).unsqueeze(1)
    overlaps = torch.einsum("khi,khj->kij", W_hat, W)  # [n_instances, i, j]
    off_diagonal = 1.0 - torch.eye(W.shape[-1], device=W.device)
    return ((overlaps * off_diagonal) ** 2).sum(-1)


def phase_grid_inputs(relative_importance: Tensor, feature_probability: Tensor) -> tuple[Tensor, Tensor]:
    """Lay out the n_features = 2 phase-diagram sweep as one batch of instances.

    relative_importance: [R] importance of the extra feature (feature 1); feature 0 has importance 1.
    feature_probability: [P] probability that a feature is present (the same for both features).
    Instance k = p_index * R + r_index (probability is the slow axis, so .reshape(P, R) recovers the grid).
    Returns (importance, probability), each [P * R, 2].
    """
    P, R = len(feature_probability), len(relative_importance)
    importance = torch.stack(
        [torch.ones(P, R), relative_importance.float().expand(P, R)], dim=-1
    )  # [P, R, 2]
    probability = feature_probability.float()[:, None, None].expand(P, R, 2)  # [P, R, 2]
    return importance.reshape(P * R, 2), probability.reshape(P * R, 2).clone()


def classify_phase(W: Tensor, threshold: float = 0.5) -> Tensor:
    """What happened to the extra feature (index 1) in an n_features = 2, n_hidden = 1 toy model?

    W: [n_instances, 1, 2]. A feature is represented when ||W_i|| > threshold.
    Returns a long tensor [n_instances]: 0 = not represented (feature 1 is off),
    1 = dedicated dimension (feature 1 is on, feature 0 is off), 2 = superposition (both on).
    """
    on = W.norm(dim=1) > threshold  # [n_instances, 2]
    phase = torch.full(on.shape[:1], NOT_REPRESENTED, dtype=torch.long, device=W.device)
    phase[on[:, 1] & ~on[:, 0]] = DEDICATED
    phase[on[:, 1] & on[:, 0]] = SUPERPOSED
    return phase


# ------------------------------------------------------------------------------------------ drills


def drill_dense_features_kept() -> int:
    """Drill: a ReLU toy model with n = 5 features, m = 2 hidden dimensions, dense features (p = 1) and
    importance I_i = 0.9 ** i. How many features does it represent (||W_i|| > 0.5)? Return an int."""
    return 2


def drill_linear_never_superposes() -> str:
    """Drill: why does the linear model (x_hat = W^T W x + b) never put features in superposition?
    Return the letter of the best answer among the options in the notebook."""
    return "c"


def drill_pentagon_dimensionality() -> float:
    """Drill: five features of equal norm arranged as a regular pentagon in 2 dimensions. What is each
    feature's dimensionality D_i? Return a float."""
    return 0.4


# ------------------------------------------------------------------------------- chapter findings


def _pentagon_angle_gaps(W: Tensor) -> Tensor:
    """Sorted angular gaps (degrees) between consecutive feature directions of one 2-D instance."""
    angles = torch.atan2(W[1], W[0]) % (2 * math.pi)  # [n_features]
    angles = angles.sort().values
    gaps = torch.diff(torch.cat([angles, angles[:1] + 2 * math.pi]))
    return torch.rad2deg(gaps)


def run_pentagon(device: str | torch.device = "cpu", seed: int = 0) -> dict:
    """n = 5, m = 2, equal importance, p = 0.02: eight seeds trained in parallel (notebook section 3)."""
    importance = torch.ones(8, 5, device=device)
    probability = torch.full((8, 5), 0.02, device=device)
    W, b = train_toy_models(importance, probability, n_hidden=2, steps=2000, lr=1e-2, seed=seed)
    return {"W": W.cpu(), "b": b.cpu()}


def run_dense_importance(device: str | torch.device = "cpu", seed: int = 0) -> dict:
    """n = 5, m = 2, dense (p = 1), I_i = 0.9 ** i, four seeds (notebook section 5)."""
    importance = feature_importance(4, 5, 0.9).to(device)
    probability = torch.ones(4, 5, device=device)
    W, b = train_toy_models(importance, probability, n_hidden=2, steps=3000, lr=1e-2, seed=seed)
    return {"W": W.cpu(), "b": b.cpu()}


SPARSITY_SWEEP = (1.0, 0.3, 0.1, 0.03, 0.01)


def run_sparsity_sweep(device: str | torch.device = "cpu", seed: int = 0) -> dict:
    """n = 20, m = 5, I_i = 0.7 ** i (the paper's Figure 2 setting), linear vs ReLU (notebook section 6)."""
    probs = torch.tensor(SPARSITY_SWEEP, device=device)
    importance = feature_importance(len(probs), 20, 0.7).to(device)
    probability = probs[:, None].expand(len(probs), 20).contiguous()
    out = {}
    for activation in ("linear", "relu"):
        W, _ = train_toy_models(importance, probability, 5, activation=activation, steps=2000, lr=1e-2, seed=seed)
        out[activation] = W.cpu()
    return out


def represented_superposition(W: Tensor, threshold: float = 0.5) -> Tensor:
    """Superposition measure of the features the model represents (||W_i|| > threshold), 0 elsewhere.

    A dropped feature's direction W_hat_i is numerical noise, so its measure means nothing."""
    return superposition_measure(W) * (W.norm(dim=1) > threshold)


PHASE_IMPORTANCE = torch.logspace(-1, 1, 9)  # relative importance of the extra feature, 0.1 .. 10
PHASE_PROBABILITY = torch.logspace(-2, 0, 9)  # feature probability (density) 0.01 .. 1


def run_phase_diagram(device: str | torch.device = "cpu", seed: int = 0, seeds: int = 3) -> Tensor:
    """The n = 2, m = 1 phase diagram [P, R]: each cell's lowest-loss seed of `seeds` (notebook section 7)."""
    importance, probability = phase_grid_inputs(PHASE_IMPORTANCE, PHASE_PROBABILITY)
    n_cells = importance.shape[0]
    importance, probability = importance.repeat(seeds, 1).to(device), probability.repeat(seeds, 1).to(device)
    W, b = train_toy_models(importance, probability, 1, steps=2000, batch_size=256, lr=1e-2, seed=seed)
    x = sample_features(8192, probability, torch.Generator(device=device).manual_seed(seed + 1))
    per_instance = (importance * (x - toy_forward(W, b, x)) ** 2).sum(-1).mean(0)  # [seeds * n_cells]
    best = per_instance.reshape(seeds, n_cells).argmin(0)
    W_best = W.reshape(seeds, n_cells, 1, 2)[best, torch.arange(n_cells, device=W.device)]
    return classify_phase(W_best).reshape(len(PHASE_PROBABILITY), len(PHASE_IMPORTANCE)).cpu()


def findings(device: str | torch.device = "cpu") -> list[Finding]:
    """Run the chapter's experiments and compare them with Elhage et al. (2022)."""
    W_pent = run_pentagon(device)["W"]  # [8, 2, 5]
    gaps = torch.stack([_pentagon_angle_gaps(W) for W in W_pent])  # [8, 5]
    dims = feature_dimensionality(W_pent)  # [8, 5]

    def pentagons(gaps, dims):
        return ((gaps - 72).abs().amax(-1) < 2) & ((dims - 0.4).abs().amax(-1) < 0.03)

    W_dense = run_dense_importance(device)["W"]  # [4, 2, 5]: the same n, m at p = 1, the contrast
    dense_gaps = torch.stack([_pentagon_angle_gaps(W) for W in W_dense])
    dense_dims = feature_dimensionality(W_dense)
    norms = W_dense.norm(dim=1)  # [4, 5]
    kept, kept_pent = norms > 0.5, W_pent.norm(dim=1) > 0.5
    only_top_two = torch.tensor([True, True, False, False, False])
    sweep = run_sparsity_sweep(device)
    linear_sup = represented_superposition(sweep["linear"])
    relu_sup = represented_superposition(sweep["relu"]).sum(-1)  # [n_probs]
    phases = run_phase_diagram(device)
    r = PHASE_IMPORTANCE

    def switch_at_one(row):
        return torch.cat([row[r < 0.99] == NOT_REPRESENTED, row[r > 1.01] == DEDICATED]).float().mean()

    def superposed_mid(rows):
        return float((rows[:, (r >= 0.3) & (r <= 3.2)] == SUPERPOSED).float().mean())

    dense_row = "the dense run (p=1, I=0.9^i)"
    return [
        Finding("n=5,m=2,p=0.02: seeds forming a regular pentagon (gaps 72°±2°, D_i 0.4±0.03)",
                "pentagon", float(pentagons(gaps, dims).float().mean()), lo=0.75,
                contrast=float(pentagons(dense_gaps, dense_dims).float().mean()), contrast_name=dense_row),
        Finding("n=5,m=2,p=0.02: worst |angle gap - 72°| over all seeds", "0°",
                float((gaps - 72).abs().max()), hi=2.0, unit="°",
                contrast=float((dense_gaps - 72).abs().max()), contrast_name=dense_row),
        Finding("n=5,m=2,p=0.02: feature dimensionality D_i, min over seeds", "2/5 = 0.4",
                float(dims.min()), 0.37, 0.43, contrast=float(dense_dims.min()), contrast_name=dense_row),
        Finding("n=5,m=2,p=0.02: feature dimensionality D_i, max over seeds", "2/5 = 0.4",
                float(dims.max()), 0.37, 0.43, contrast=float(dense_dims.max()), contrast_name=dense_row),
        Finding("n=5,m=2 dense, I=0.9^i: features represented, mean over 4 seeds", "2 (= m)",
                float(kept.sum(-1).float().mean()), 2.0, 2.0,
                contrast=float(kept_pent.sum(-1).float().mean()), contrast_name="the sparse run (p=0.02)"),
        Finding("n=5,m=2 dense, I=0.9^i: seeds keeping exactly the two most important", "features 0 and 1",
                float((kept == only_top_two).all(-1).float().mean()), 1.0, 1.0,
                contrast=float((kept_pent == only_top_two).all(-1).float().mean()),
                contrast_name="the sparse run (p=0.02)"),
        Finding("n=20,m=5 linear: max superposition of a represented feature, any p", "0 (never superposes)",
                float(linear_sup.max()), hi=0.01,
                contrast=float(represented_superposition(sweep["relu"]).max()), contrast_name="ReLU, same sweep"),
        Finding("n=20,m=5 linear: features represented at every p", "5 (= m, the most important)",
                float((sweep["linear"].norm(dim=1) > 0.5).sum(-1).float().mean()), 5.0, 5.0,
                contrast=float((sweep["relu"][-1].norm(dim=0) > 0.5).sum()), contrast_name="ReLU at p=0.01"),
        Finding("n=20,m=5 ReLU, p=1: total superposition", "≈ 0 (dense: none)", float(relu_sup[0]), hi=0.05,
                contrast=float(relu_sup[-1]), contrast_name="ReLU at p=0.01"),
        Finding("n=20,m=5 ReLU, p=0.01: total superposition", "> 0 (sparse: superposes)",
                float(relu_sup[-1]), lo=1.0, contrast=float(relu_sup[0]), contrast_name="ReLU at p=1"),
        Finding("n=2,m=1 dense (p=1): not represented for r<1, dedicated for r>1", "sharp switch at r=1",
                float(switch_at_one(phases[-1])), 1.0, 1.0, contrast=float(switch_at_one(phases[0])),
                contrast_name="the sparsest row (p=0.01)"),
        Finding("n=2,m=1 sparse (p≤0.1), 0.3≤r≤3: fraction of cells in superposition", "superposition",
                superposed_mid(phases[PHASE_PROBABILITY <= 0.1]), lo=0.8,
                contrast=superposed_mid(phases[PHASE_PROBABILITY > 0.5]), contrast_name="the dense rows (p>0.5)"),
    ]
