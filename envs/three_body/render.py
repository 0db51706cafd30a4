"""Rendering of ThreeBody trajectories to an RGB image (plain numpy, no matplotlib)."""

from __future__ import annotations

import numpy as np

BODY_COLORS: tuple[tuple[int, int, int], ...] = ((230, 57, 70), (29, 120, 200), (40, 160, 60))
"""RGB colour of bodies 0, 1, 2."""


def render_orbits(states: list, size: int = 400) -> np.ndarray:
    """Draw the trajectories of a list of :class:`EnvState` (plain numpy, no matplotlib).

    Returns:
        uint8 image [size, size, 3]: white background, one coloured trail per body, a square
        on each body's current position.
    """
    img = np.full((size, size, 3), 255, np.uint8)
    if not states:
        return img
    pos = np.stack([np.asarray(s.hermite.pos, np.float64) for s in states])  # [T, 3, 2]
    pos = np.where(np.isfinite(pos), pos, 0.0)
    centre = 0.5 * (pos.reshape(-1, 2).max(0) + pos.reshape(-1, 2).min(0))
    half = max(float(np.abs(pos.reshape(-1, 2) - centre).max()), 1e-9) * 1.1
    pix = ((pos - centre) / half * 0.5 + 0.5) * (size - 1)
    pix[..., 1] = size - 1 - pix[..., 1]
    for b, colour in enumerate(BODY_COLORS):
        track = pix[:, b]
        for p0, p1 in zip(track[:-1], track[1:], strict=True):
            n = int(max(abs(p1 - p0).max(), 1)) + 1
            xs = np.clip(np.rint(np.linspace(p0[0], p1[0], n)).astype(int), 0, size - 1)
            ys = np.clip(np.rint(np.linspace(p0[1], p1[1], n)).astype(int), 0, size - 1)
            img[ys, xs] = colour
            img[np.minimum(ys + 1, size - 1), xs] = colour  # 2 px wide
            img[ys, np.minimum(xs + 1, size - 1)] = colour
        cx, cy = np.clip(np.rint(track[-1]).astype(int), 3, size - 4)
        img[cy - 3 : cy + 4, cx - 3 : cx + 4] = colour
    return img
