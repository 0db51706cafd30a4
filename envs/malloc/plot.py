"""Pictures of placements: time on x, address on y, one rectangle per placed buffer."""

from __future__ import annotations

from typing import Any

import numpy as np

from accelrl.envs.malloc.workload import Workload


def plot_placement(
    workload: Workload,
    offsets: Any,
    capacity: int,
    ax: Any = None,
    current: int | None = None,
    title: str | None = None,
) -> Any:
    """Draw a placement with matplotlib (Agg).

    Args:
        workload: the buffers.
        offsets: [N] byte offsets, -1 = slow memory (not drawn, counted in the title).
        capacity: fast-memory bytes (dashed line).
        ax: axes to draw into (default: a new 6.4 x 4.0 inch figure).
        current: id of the buffer on offer (outlined at the capacity line), if any.
        title: figure title (default: placed bytes and benefit fractions).

    Returns:
        the matplotlib ``Figure``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    off = np.asarray(offsets, np.int64)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=80)
    else:
        fig = ax.figure
    placed = np.flatnonzero(off >= 0)
    cmap = matplotlib.colormaps["viridis"]
    density = workload.memory_boundedness()
    dmax = density.max() if workload.num_buffers and density.max() > 0 else 1.0
    rects = [
        Rectangle(
            (workload.start[i], off[i]), workload.end[i] - workload.start[i] + 1, workload.size[i]
        )
        for i in placed
    ]
    pc = PatchCollection(
        rects,
        facecolor=[cmap(0.15 + 0.8 * density[i] / dmax) for i in placed],
        edgecolor="black",
        linewidth=0.3,
    )
    ax.add_collection(pc)
    ax.axhline(capacity, color="red", linestyle="--", linewidth=1.0, label="capacity")
    if current is not None:
        ax.add_patch(
            Rectangle(
                (workload.start[current], capacity),
                workload.end[current] - workload.start[current] + 1,
                min(workload.size[current], capacity * 0.25),
                facecolor="none",
                edgecolor="orange",
                linewidth=1.5,
            )
        )
    ax.set_xlim(0, max(workload.horizon, 1))
    ax.set_ylim(0, capacity * 1.3 if capacity > 0 else 1)
    ax.set_xlabel("schedule step")
    ax.set_ylabel("address (bytes)")
    if title is None:
        total = workload.total_benefit
        frac_b = workload.benefit[placed].sum() / total if total > 0 else 0.0
        frac_s = workload.size[placed].sum() / max(workload.size.sum(), 1)
        title = (
            f"{workload.name}: {len(placed)}/{workload.num_buffers} in fast memory, "
            f"benefit {frac_b:.3f}, bytes {frac_s:.3f}"
        )
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    return fig


def figure_to_rgb(fig: Any, close: bool = True) -> np.ndarray:
    """Render a matplotlib figure to a uint8 [H, W, 3] array (and close it)."""
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    if close:
        plt.close(fig)
    return rgb
