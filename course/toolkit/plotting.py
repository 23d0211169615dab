"""Figures used across chapters (matplotlib only; every function returns the Figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import ListedColormap
from torch import Tensor


def plot_features_2d(W: Tensor, titles: list[str] | None = None, ncols: int = 4):
    """One panel per instance: each feature's 2-D direction W_i drawn as a line from the origin.

    W: [n_instances, 2, n_features]."""
    W = W.detach().cpu()
    n = W.shape[0]
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.6 * nrows), squeeze=False)
    colors = plt.cm.viridis(torch.linspace(0, 0.9, W.shape[-1]).numpy())
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k >= n:
            continue
        for i in range(W.shape[-1]):
            x, y = float(W[k, 0, i]), float(W[k, 1, i])
            ax.plot([0, x], [0, y], color=colors[i], lw=2)
            ax.scatter([x], [y], color=colors[i], s=18, zorder=3)
        lim = max(1.2, float(W[k].abs().max()) * 1.1)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.axhline(0, color="0.85", lw=0.8, zorder=0)
        ax.axvline(0, color="0.85", lw=0.8, zorder=0)
        if titles:
            ax.set_title(titles[k], fontsize=9)
    fig.tight_layout()
    return fig


def plot_WtW(W: Tensor, titles: list[str] | None = None, max_panels: int = 6):
    """Heatmaps of W^T W per instance (diagonal = ||W_i||^2, off-diagonal = interference)."""
    W = W.detach().cpu()[:max_panels]
    n = W.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(2.8 * n, 2.8), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.imshow((W[k].T @ W[k]).numpy(), cmap="RdBu", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles:
            ax.set_title(titles[k], fontsize=9)
    fig.suptitle("$W^T W$ (red = +1, blue = -1)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_feature_bars(W: Tensor, superposition: Tensor, titles: list[str] | None = None):
    """The paper's summary plot: one bar per feature, length ||W_i||, colour = its superposition measure
    (dark = a dimension of its own, yellow = shares its direction). W: [n_instances, n_hidden, n_features]."""
    W, superposition = W.detach().cpu(), superposition.detach().cpu()
    n = W.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 3.2), squeeze=False, sharey=True)
    norms = W.norm(dim=1)
    for k, ax in enumerate(axes.flat):
        colors = plt.cm.viridis(superposition[k].clamp(0, 1).numpy())
        ax.barh(range(W.shape[-1]), norms[k].numpy(), color=colors)
        ax.invert_yaxis()
        ax.set_xlim(0, max(1.2, float(norms.max()) * 1.05))
        if titles:
            ax.set_title(titles[k], fontsize=9)
        ax.set_xlabel("$||W_i||$")
    axes.flat[0].set_ylabel("feature i (most important at the top)")
    fig.tight_layout()
    return fig


def plot_phase_diagram(phases: Tensor, relative_importance: Tensor, feature_probability: Tensor,
                       names=("not represented", "dedicated dimension", "superposition")):
    """phases: [P, R] with values 0/1/2, rows = feature probability, columns = relative importance."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    cmap = ListedColormap(["#dddddd", "#4c78a8", "#f58518"])
    ax.pcolormesh(relative_importance.numpy(), feature_probability.numpy(), phases.numpy(), cmap=cmap,
                  vmin=-0.5, vmax=2.5, shading="nearest")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("relative importance of the extra feature")
    ax.set_ylabel("feature probability (density)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(3)]
    ax.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, fontsize=8)
    fig.tight_layout()
    return fig


def plot_attention_patterns(patterns: list[Tensor], title: str = "", max_heads: int = 8):
    """One heatmap per (layer, head): patterns[layer] is [head, query, key] for one sequence."""
    n_layers, n_heads = len(patterns), min(patterns[0].shape[0], max_heads)
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(2.2 * n_heads + 0.8, 2.3 * n_layers), squeeze=False,
                             layout="constrained")
    n = patterns[0].shape[-1]
    ticks = list(range(0, n, max(1, n // 4)))
    for layer, pattern in enumerate(patterns):
        for head in range(n_heads):
            ax = axes[layer, head]
            im = ax.imshow(pattern[head].detach().cpu().numpy(), cmap="Blues", vmin=0, vmax=1)
            ax.set_title(f"head {layer}.{head}", fontsize=8)
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
            ax.tick_params(labelsize=6)
    for ax in axes[:, 0]:
        ax.set_ylabel("query position", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("key position", fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.8, label="attention")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_head_scores(scores: dict[str, dict[str, Tensor]]):
    """scores[model][detector] = [n_layers, n_heads]: one grouped bar chart per model."""
    fig, axes = plt.subplots(1, len(scores), figsize=(5 * len(scores), 3), squeeze=False)
    for ax, (model, by_detector) in zip(axes.flat, scores.items(), strict=False):
        labels = None
        for i, (detector, values) in enumerate(by_detector.items()):
            flat = values.flatten()
            labels = [f"{l}.{h}" for l in range(values.shape[0]) for h in range(values.shape[1])]
            ax.bar([x + 0.27 * i for x in range(len(flat))], flat.numpy(), width=0.27, label=detector)
        ax.set_xticks([x + 0.27 for x in range(len(labels))], labels)
        ax.set_ylim(0, 1)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("head (layer.head)")
    axes.flat[0].set_ylabel("score")
    axes.flat[-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_layer_head_bars(series: dict[str, Tensor], ylabel: str = ""):
    """Grouped bars per head (layer.head) for each named [n_layers, n_heads] tensor."""
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        flat = values.detach().cpu().flatten()
        ax.bar([x + width * i for x in range(len(flat))], flat.numpy(), width=width, label=name)
    n_layers, n_heads = next(iter(series.values())).shape
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(n_layers * n_heads)],
                  [f"{l}.{h}" for l in range(n_layers) for h in range(n_heads)])
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("head (layer.head)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_matrix(matrix: Tensor, xlabel: str = "", ylabel: str = "", title: str = ""):
    """A small annotated heatmap."""
    matrix = matrix.detach().cpu()
    fig, ax = plt.subplots(figsize=(1 + 0.8 * matrix.shape[1], 1 + 0.7 * matrix.shape[0]))
    im = ax.imshow(matrix.numpy(), cmap="viridis")
    lo, hi = float(matrix.min()), float(matrix.max())
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            light = (float(matrix[i, j]) - lo) / max(hi - lo, 1e-12) > 0.6  # viridis is yellow at the top
            ax.text(j, i, f"{float(matrix[i, j]):.2f}", ha="center", va="center", fontsize=8,
                    color="black" if light else "white")
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_yticks(range(matrix.shape[0]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def plot_token_attributions(tokens: list[list[str]], scores: list[list[Tensor]], row_labels: list[str] | None = None,
                            titles: list[str] | None = None):
    """Coloured text: for each sentence, one line per attribution variant (e.g. per baseline); each token's
    background is red for evidence for the explained class, blue against, scaled per line.

    tokens: [sentence][token] strings; scores: [variant][sentence] 1-D tensors aligned with tokens;
    row_labels: a name per variant; titles: a caption per sentence (e.g. the predicted class)."""
    n_var, n_sent = len(scores), len(tokens)
    n_lines = n_sent * (n_var + 1)
    fig = plt.figure(figsize=(10, 0.32 * n_lines + 0.3))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    renderer = fig.canvas.get_renderer()
    cmap = plt.cm.RdBu_r
    line_h = 1 / n_lines
    y = 1 - 0.6 * line_h
    for c in range(n_sent):
        ax.text(0.01, y, titles[c] if titles else f"sentence {c}", fontsize=9, weight="bold", va="center")
        y -= line_h
        for r in range(n_var):
            s = scores[r][c].detach().cpu().float()
            scale = float(s.abs().max()) or 1.0
            ax.text(0.01, y, row_labels[r] if row_labels else "", fontsize=8, va="center", color="0.35")
            x = 0.14
            for tok, v in zip(tokens[c], s.tolist(), strict=True):
                t = ax.text(x, y, tok, fontsize=9, va="center", ha="left",
                            color="white" if abs(v) / scale > 0.6 else "black",
                            bbox={"facecolor": cmap(0.5 + 0.45 * v / scale), "edgecolor": "none", "pad": 1.5})
                box = t.get_window_extent(renderer=renderer).transformed(ax.transAxes.inverted())
                x = box.x1 + 0.006
            y -= line_h
    return fig
