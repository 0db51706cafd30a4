"""Host-side rendering of MPE states as PettingZoo draws them (discs on white, 700x700)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH = HEIGHT = 700


def _cam_range(p_pos: np.ndarray) -> float:
    return float(np.max(np.abs(p_pos)))


def render_frame(env: Any, states: list) -> np.ndarray:
    """RGB frame ``uint8[700, 700, 3]`` of ``states[-1]``.

    Follows mpe2's ``SimpleEnv.draw``: the view spans the largest absolute coordinate, y points
    up, entities are drawn in order (agents, then landmarks) with colour ``200 * color`` and a
    black outline, radii scaled by ``0.9 * original_range / range`` (dynamic rescaling), where
    the original range is that of ``states[0]`` (the state after the reset). Utterances are
    written as mpe2 writes them (``"<agent> sends <word>"``).

    Args:
        env: the :class:`~accelrl.envs.mpe.world.MPEEnv` the states come from.
        states: unbatched states since the last reset; the last is drawn.
    """
    if not states:
        raise ValueError("render needs at least one state")
    state = states[-1]
    p_pos = np.asarray(state.p_pos, np.float64)
    sizes = np.asarray(env.layout.size, np.float64)
    colors = np.asarray(env.colors(state), np.float64)[:, :3]
    cam = _cam_range(p_pos)
    scaling = 0.9 * _cam_range(np.asarray(states[0].p_pos, np.float64)) / cam
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for e in range(env.layout.num_entities):
        x, y = p_pos[e, 0], -p_pos[e, 1]
        # mpe2's expression, floor division included
        x = (x / cam) * WIDTH // 2 * 0.9 + WIDTH // 2
        y = (y / cam) * HEIGHT // 2 * 0.9 + HEIGHT // 2
        r = sizes[e] * 350 * scaling
        box = [x - r, y - r, x + r, y + r]
        fill = tuple(int(v) for v in np.clip(colors[e] * 200, 0, 255))
        draw.ellipse(box, fill=fill, outline=(0, 0, 0), width=1)
    # utterances of agents that can speak
    c = np.asarray(state.c)
    font = ImageFont.load_default(size=24)
    line = 0
    for i, name in enumerate(env.agents):
        if env.layout.silent[i]:
            continue
        if np.all(c[i] == 0):
            word = "_"
        elif env.continuous:
            word = "[" + ",".join(f"{v:.2f}" for v in c[i]) + "]"
        else:
            word = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[int(np.argmax(c[i]))]
        draw.text(
            (WIDTH * 0.05, HEIGHT * 0.95 - HEIGHT * 0.05 * line),
            f"{name} sends {word}",
            fill=(0, 0, 0),
            font=font,
        )
        line += 1
    return np.asarray(image, np.uint8)
