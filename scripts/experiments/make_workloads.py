"""Regenerate MallocGame's shipped workloads from real programs compiled by XLA.

For every model of a small zoo (flax linen: MLPs, CNNs, a ResNet block stack, transformer
encoder and decoder, LSTM/GRU scans, a diffusion U-Net block, ...) a *worker subprocess*
compiles its forward pass and its training step (loss, gradients, Adam update) at several
batch sizes with XLA's buffer-assignment dumps on (the dump flags are read when the backend
starts, hence one subprocess per model; nothing is executed, programs are lowered from
shapes). The parent parses the dumps (:func:`accelrl.envs.malloc.xla_dump.workload_from_dump`)
and writes ``envs/malloc/data/workloads.{npz,json}`` with a train/test split by model and a
validation split of training-model programs held out of training
(:func:`accelrl.envs.malloc.workload.validation_programs`).

    python scripts/experiments/make_workloads.py            # all models, ~2-4 minutes on 2 cores
    python scripts/experiments/make_workloads.py --large    # the large set (its own files)
    python scripts/experiments/make_workloads.py --models mlp lstm --out /tmp/wl
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import tyro

from accelrl.envs.malloc.workload import (
    DATASET_JSON,
    DATASET_NPZ,
    DEFAULT_FAST_BW,
    DEFAULT_SLOW_BW,
    LARGE_JSON,
    LARGE_NPZ,
    save_dataset,
    validation_programs,
)

TEST_MODELS = ("gru", "mobilenet", "transformer_decoder", "vae")
ALL_MODELS = (
    "mlp",
    "mlp_deep",
    "cnn",
    "resnet",
    "transformer_encoder",
    "transformer_decoder",
    "lstm",
    "gru",
    "unet",
    "vae",
    "mixer",
    "mobilenet",
    "gnn",
    "vit",
)
LARGE_MODELS = (
    "gpt_large",
    "resnet_large",
    "transformer_decoder_large",
    "transformer_encoder_large",
    "vit_large",
)
"""The large set (``--large``): deeper and wider members of the zoo's families, whose training
steps have 1,600-4,000 buffers; its own split (``load_dataset("large")``), never trained on."""
LARGE_BATCHES = (4, 16)


# ---- the model zoo (imported only inside worker processes) ----------------------------------
def _zoo():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    class MLP(nn.Module):
        widths: tuple = (256, 256, 10)

        @nn.compact
        def __call__(self, x):
            x = x.reshape(x.shape[0], -1)
            for k, w in enumerate(self.widths):
                x = nn.Dense(w)(x)
                if k < len(self.widths) - 1:
                    x = nn.relu(x)
            return x

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(16, (5, 5))(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
            x = nn.relu(nn.Conv(32, (5, 5))(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
            return nn.Dense(10)(nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1))))

    class ResBlock(nn.Module):
        ch: int
        stride: int

        @nn.compact
        def __call__(self, x):
            y = nn.Conv(self.ch, (3, 3), (self.stride, self.stride))(x)
            y = nn.relu(nn.LayerNorm()(y))
            y = nn.LayerNorm()(nn.Conv(self.ch, (3, 3))(y))
            if x.shape[-1] != self.ch or self.stride != 1:
                x = nn.Conv(self.ch, (1, 1), (self.stride, self.stride))(x)
            return nn.relu(x + y)

    class ResNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(16, (3, 3))(x)
            for ch, stride in ((16, 1), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1)):
                x = ResBlock(ch, stride)(x)
            return nn.Dense(10)(x.mean(axis=(1, 2)))

    class Block(nn.Module):
        d: int = 64
        causal: bool = False
        cross: bool = False

        @nn.compact
        def __call__(self, x, mem=None):
            mask = nn.make_causal_mask(x[..., 0]) if self.causal else None
            x = x + nn.SelfAttention(num_heads=4)(nn.LayerNorm()(x), mask=mask)
            if self.cross:
                x = x + nn.MultiHeadDotProductAttention(num_heads=4)(nn.LayerNorm()(x), mem)
            h = nn.Dense(4 * self.d)(nn.LayerNorm()(x))
            return x + nn.Dense(self.d)(nn.gelu(h))

    class Encoder(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            x = nn.Embed(512, 64)(tokens) + self.param(
                "pos", nn.initializers.normal(0.02), (tokens.shape[1], 64)
            )
            for _ in range(2):
                x = Block()(x)
            return nn.Dense(512)(nn.LayerNorm()(x))

    class Decoder(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            mem = nn.Embed(512, 64, name="src")(tokens[:, ::-1])
            x = nn.Embed(512, 64)(tokens)
            for _ in range(2):
                x = Block(causal=True, cross=True)(x, mem)
            return nn.Dense(512)(nn.LayerNorm()(x))

    class Recurrent(nn.Module):
        cell: str = "lstm"

        @nn.compact
        def __call__(self, x):
            cell = nn.OptimizedLSTMCell(64) if self.cell == "lstm" else nn.GRUCell(64)
            y = nn.RNN(cell)(x)
            return nn.Dense(10)(y[:, -1])

    class UNet(nn.Module):
        @nn.compact
        def __call__(self, x, t):
            temb = nn.Dense(32)(jnp.sin(t[:, None] * jnp.arange(1, 17)))
            h1 = nn.silu(nn.GroupNorm(8)(nn.Conv(32, (3, 3))(x)))
            h1 = h1 + temb[:, None, None, :]
            h2 = nn.silu(nn.GroupNorm(8)(nn.Conv(64, (3, 3), (2, 2))(h1)))
            h2 = nn.silu(nn.GroupNorm(8)(nn.Conv(64, (3, 3))(h2)))
            up = jax.image.resize(h2, h1.shape[:3] + (64,), "nearest")
            h = nn.silu(nn.GroupNorm(8)(nn.Conv(32, (3, 3))(jnp.concatenate([up, h1], -1))))
            return nn.Conv(x.shape[-1], (3, 3))(h)

    class VAE(nn.Module):
        @nn.compact
        def __call__(self, x, eps):
            h = nn.relu(nn.Dense(256)(x.reshape(x.shape[0], -1)))
            mu, logvar = nn.Dense(16)(h), nn.Dense(16)(h)
            z = mu + jnp.exp(0.5 * logvar) * eps
            out = nn.Dense(x[0].size)(nn.relu(nn.Dense(256)(z)))
            kl = -0.5 * jnp.sum(1 + logvar - mu**2 - jnp.exp(logvar), -1)
            return out, kl

    class Mixer(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(64, (4, 4), (4, 4))(x)
            x = x.reshape(x.shape[0], -1, 64)
            for _ in range(2):
                y = nn.LayerNorm()(x).swapaxes(1, 2)
                y = nn.Dense(x.shape[1])(nn.gelu(nn.Dense(64)(y))).swapaxes(1, 2)
                x = x + y
                x = x + nn.Dense(64)(nn.gelu(nn.Dense(128)(nn.LayerNorm()(x))))
            return nn.Dense(10)(x.mean(1))

    class MobileNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(16, (3, 3), (2, 2))(x))
            for ch, stride in ((32, 1), (64, 2), (64, 1), (128, 2)):
                x = nn.relu(
                    nn.Conv(x.shape[-1], (3, 3), (stride, stride), feature_group_count=x.shape[-1])(
                        x
                    )
                )
                x = nn.relu(nn.Conv(ch, (1, 1))(x))
            return nn.Dense(10)(x.mean(axis=(1, 2)))

    class GNN(nn.Module):
        @nn.compact
        def __call__(self, nodes, senders, receivers):
            h = nn.Dense(64)(nodes)
            for _ in range(3):
                msg = nn.Dense(64)(jnp.concatenate([h[senders], h[receivers]], -1))
                agg = jax.ops.segment_sum(nn.relu(msg), receivers, num_segments=h.shape[0])
                h = h + nn.Dense(64)(agg)
            return nn.Dense(1)(h).mean()

    class ViT(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(64, (4, 4), (4, 4))(x)
            x = x.reshape(x.shape[0], -1, 64)
            for _ in range(2):
                x = Block()(x)
            return nn.Dense(10)(x.mean(1))

    # ---- the large set: deeper and wider members of the same families (training steps of
    # 1,000-5,000 buffers), a split of its own ----
    class DeepEncoder(nn.Module):  # causal: a GPT-style decoder-only stack
        depth: int = 8
        d: int = 128
        vocab: int = 1024
        causal: bool = False

        @nn.compact
        def __call__(self, tokens):
            x = nn.Embed(self.vocab, self.d)(tokens) + self.param(
                "pos", nn.initializers.normal(0.02), (tokens.shape[1], self.d)
            )
            for _ in range(self.depth):
                x = Block(self.d, causal=self.causal)(x)
            return nn.Dense(self.vocab)(nn.LayerNorm()(x))

    class DeepDecoder(nn.Module):
        depth: int = 6
        d: int = 128
        vocab: int = 1024

        @nn.compact
        def __call__(self, tokens):
            mem = nn.Embed(self.vocab, self.d, name="src")(tokens[:, ::-1])
            x = nn.Embed(self.vocab, self.d)(tokens)
            for _ in range(self.depth):
                x = Block(self.d, causal=True, cross=True)(x, mem)
            return nn.Dense(self.vocab)(nn.LayerNorm()(x))

    class DeepResNet(nn.Module):
        stages: tuple = ((32, 3), (64, 4), (128, 6), (256, 3))  # ResNet-34's block counts

        @nn.compact
        def __call__(self, x):
            x = nn.Conv(self.stages[0][0], (3, 3))(x)
            for i, (ch, blocks) in enumerate(self.stages):
                for j in range(blocks):
                    x = ResBlock(ch, 2 if i > 0 and j == 0 else 1)(x)
            return nn.Dense(10)(x.mean(axis=(1, 2)))

    class DeepViT(nn.Module):
        depth: int = 8
        d: int = 128

        @nn.compact
        def __call__(self, x):
            x = nn.Conv(self.d, (4, 4), (4, 4))(x)
            x = x.reshape(x.shape[0], -1, self.d)
            for _ in range(self.depth):
                x = Block(self.d)(x)
            return nn.Dense(10)(x.mean(1))

    f32, i32 = jnp.float32, jnp.int32
    sds = jax.ShapeDtypeStruct

    def classify(module, x_shape, x_dtype=f32):
        def inputs(b):
            return (sds((b,) + x_shape, x_dtype),)

        def loss(params, x):
            logits = module.apply(params, x)
            return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[..., 0])

        return module, inputs, loss

    def gnn_spec():
        module = GNN()

        def inputs(b):  # b graphs of 16 nodes, 48 edges each, batched into one graph
            return (sds((16 * b, 8), f32), sds((48 * b,), i32), sds((48 * b,), i32))

        def loss(params, nodes, s, r):
            return module.apply(params, nodes, s, r)

        return module, inputs, loss

    def unet_spec():
        module = UNet()

        def inputs(b):
            return (sds((b, 16, 16, 3), f32), sds((b,), f32))

        def loss(params, x, t):
            return jnp.mean((module.apply(params, x, t) - x) ** 2)

        return module, inputs, loss

    def vae_spec():
        module = VAE()

        def inputs(b):
            return (sds((b, 28, 28, 1), f32), sds((b, 16), f32))

        def loss(params, x, eps):
            out, kl = module.apply(params, x, eps)
            return jnp.mean((out - x.reshape(x.shape[0], -1)) ** 2) + kl.mean()

        return module, inputs, loss

    return {
        "mlp": lambda: classify(MLP(), (784,)),
        "mlp_deep": lambda: classify(MLP((128,) * 7 + (10,)), (256,)),
        "cnn": lambda: classify(CNN(), (28, 28, 1)),
        "resnet": lambda: classify(ResNet(), (32, 32, 3)),
        "transformer_encoder": lambda: classify(Encoder(), (32,), i32),
        "transformer_decoder": lambda: classify(Decoder(), (32,), i32),
        "lstm": lambda: classify(Recurrent("lstm"), (16, 32)),
        "gru": lambda: classify(Recurrent("gru"), (16, 32)),
        "unet": unet_spec,
        "vae": vae_spec,
        "mixer": lambda: classify(Mixer(), (16, 16, 3)),
        "mobilenet": lambda: classify(MobileNet(), (32, 32, 3)),
        "gnn": gnn_spec,
        "vit": lambda: classify(ViT(), (16, 16, 3)),
        "transformer_encoder_large": lambda: classify(DeepEncoder(), (64,), i32),
        "transformer_decoder_large": lambda: classify(DeepDecoder(), (64,), i32),
        "resnet_large": lambda: classify(DeepResNet(), (32, 32, 3)),
        "vit_large": lambda: classify(DeepViT(), (32, 32, 3)),
        "gpt_large": lambda: classify(DeepEncoder(depth=16, causal=True), (64,), i32),
    }


def _worker(model: str, batches: list[int]) -> None:
    """Compile one model's programs (runs with the dump flags set by the parent)."""
    import jax
    import optax

    module, inputs, loss = _zoo()[model]()
    tx = optax.adam(1e-3)
    for b in batches:
        args = inputs(b)
        params = jax.eval_shape(lambda a: module.init(jax.random.key(0), *a), args)
        opt_state = jax.eval_shape(tx.init, params)

        def forward(params, *a):
            return loss(params, *a)

        def train(params, opt_state, *a):
            value, grads = jax.value_and_grad(loss)(params, *a)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

        for mode, fn, fargs in (
            ("fwd", forward, (params, *args)),
            ("train", train, (params, opt_state, *args)),
        ):
            fn.__name__ = fn.__qualname__ = f"{model}_{mode}_b{b}"
            jax.jit(fn).lower(*fargs).compile()


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of make_workloads."""

    models: tuple[str, ...] | None = None
    """Models to compile (default: ``ALL_MODELS``; with ``--large``, ``LARGE_MODELS``)."""
    batches: tuple[int, ...] | None = None
    """Batch sizes per model (default: 2, 8, 32; with ``--large``, ``LARGE_BATCHES``)."""
    test_models: tuple[str, ...] = TEST_MODELS
    """Models held out as the test split."""
    large: bool = False
    """Write the large set instead: the models' training steps only (no forward passes), all in
    the split ``"large"``, to ``workloads_large.{npz,json}``; the main set is left as it is."""
    fast_bw: float = DEFAULT_FAST_BW
    """Fast-memory bandwidth of the cost model (bytes/s)."""
    slow_bw: float = DEFAULT_SLOW_BW
    """Slow-memory bandwidth (bytes/s)."""
    peak_flops: float = 1.0e14
    """Compute cap of the cost model (flop/s); 0 disables it."""
    out: Path | None = None
    """Output folder (default: the package's envs/malloc/data)."""
    worker: str | None = None
    """Internal: compile this model in-process (set by the parent)."""


def compile_workloads(
    args: Args, models: Sequence[str], batches: Sequence[int], modes: Sequence[str]
) -> list:
    """Compile every model in its own worker process with XLA's dumps on and read each
    ``(batch, mode)`` program's buffers from them."""  # fmt: skip
    from accelrl.envs.malloc.xla_dump import workload_from_dump

    workloads = []
    for model in models:
        t0 = time.time()
        with tempfile.TemporaryDirectory() as dump:
            env = dict(os.environ)
            env["XLA_FLAGS"] = (
                f"--xla_dump_to={dump} --xla_dump_hlo_as_text --xla_dump_buffer_assignment_analysis"
            )
            env["JAX_PLATFORMS"] = "cpu"
            env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
            cmd = [sys.executable, __file__, "--worker", model, "--batches", *map(str, batches)]
            subprocess.run(cmd, env=env, check=True)
            for b in batches:
                for mode in modes:
                    w = workload_from_dump(
                        dump,
                        f"jit_{model}_{mode}_b{b}.",
                        args.fast_bw,
                        args.slow_bw,
                        args.peak_flops or None,
                        name=f"{model}/{mode}/b{b}",
                    )
                    workloads.append(w)
                    print(
                        f"{w.name:36s} buffers {w.num_buffers:5d}  peak live "
                        f"{w.peak_live_count:4d} buffers / {w.peak_live_bytes / 2**20:8.2f} MiB"
                    )
        print(f"  {model}: {time.time() - t0:.1f} s", flush=True)
    return workloads


def main(args: Args | None = None) -> None:
    args = args or tyro.cli(Args)
    if args.worker is not None:
        _worker(args.worker, list(args.batches or (2, 8, 32)))
        return
    models = list(args.models or (LARGE_MODELS if args.large else ALL_MODELS))
    batches = list(args.batches or (LARGE_BATCHES if args.large else (2, 8, 32)))
    unknown = sorted(set(models) - set(ALL_MODELS) - set(LARGE_MODELS))
    if unknown:
        raise SystemExit(f"make_workloads: unknown model(s) {unknown}")
    modes = ("train",) if args.large else ("fwd", "train")
    workloads = compile_workloads(args, models, batches, modes)
    out = Path(args.out) if args.out else DATASET_NPZ.parent
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "cost_model": {
            "fast_bw": args.fast_bw,
            "slow_bw": args.slow_bw,
            "peak_flops": args.peak_flops,
        },
        "batches": batches,
        "source": "XLA CPU buffer assignment (jax " + __import__("jax").__version__ + ")",
    }
    if args.large:
        meta["split"] = {"large": sorted(models)}
        npz, js = LARGE_NPZ.name, LARGE_JSON.name
    else:
        train = sorted(m for m in models if m not in args.test_models)
        test = sorted(m for m in models if m in args.test_models)
        meta["split"] = {"train": train, "test": test}
        meta["validation"] = validation_programs(train, batches)
        npz, js = DATASET_NPZ.name, DATASET_JSON.name
    save_dataset(workloads, meta, out / npz, out / js)
    print(f"wrote {len(workloads)} workloads to {out / npz}")


if __name__ == "__main__":
    main()
