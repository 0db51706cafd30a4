"""Write a GIF of one MPE episode under a uniform random policy.

python scripts/experiments/mpe_gif.py --env-id MPE_simple_tag_v3 --out tag.gif
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import jax
import numpy as np
import tyro

from accelrl.envs import make


@dataclass(frozen=True)
class Args:
    """Command-line arguments of the MPE GIF writer."""

    env_id: str = "MPE_simple_spread_v3"
    """An ``MPE_*`` id."""
    out: Path = Path("mpe.gif")
    """Output GIF path."""
    action_type: str = "discrete"
    """``"discrete"`` or ``"continuous"``."""
    seed: int = 0
    """Seed of the reset and of the random actions."""
    max_steps: int | None = None
    """Episode length (default: the scenario's, 25)."""
    fps: int = 10
    """Frames per second (PettingZoo's MPE renders at 10)."""
    scale: int = 2
    """Downscale factor of the 700x700 frames (1 keeps full size)."""


def episode_frames(args: Args) -> list[np.ndarray]:
    """RGB frames ``uint8[H, W, 3]`` of one episode (reset state included)."""
    env, params = make(args.env_id, action_type=args.action_type)
    if args.max_steps is not None:
        params = params.replace(max_steps_in_episode=args.max_steps)
    reset = jax.jit(env.reset_env)
    step = jax.jit(env.transition)
    key = jax.random.key(args.seed)
    key, k0 = jax.random.split(key)
    _, state = reset(k0, params)
    states = [state]
    frames = [env.render(states, params)]
    done = False
    while not done:
        key, ka, ks = jax.random.split(key, 3)
        keys = jax.random.split(ka, env.num_agents)
        actions = {
            a: env.action_space(a, params).sample(k) for a, k in zip(env.agents, keys, strict=True)
        }
        _, state, _, term, trunc, _ = step(ks, state, actions, params)
        states.append(state)
        frames.append(env.render(states, params))
        done = bool(term["__all__"] | trunc["__all__"])
    return [f[:: args.scale, :: args.scale] for f in frames]


def main(argv: list[str] | None = None) -> Path:
    args = tyro.cli(Args, args=argv)
    frames = episode_frames(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(args.out, frames, duration=1000 / args.fps, loop=0)
    print(f"wrote {args.out} ({len(frames)} frames)")
    return args.out


if __name__ == "__main__":
    main()
