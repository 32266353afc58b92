"""Estimator training throughput: ptjax (jitted JAX) vs a PyTorch eager implementation of the same architecture.

    python benchmarks/estimator.py [--batch 1024] [--steps 10] [--channels 1024] [--widths 3,3,3] [--json out.json]

Both sides train PoseNet and TrajNet (VideoPose3D temporal model in its strided single-frame form, 27 frames,
1024 channels, dropout 0.25, BN momentum 0.1) on the same batch of 2D-3D pairs, one step = forward, loss (MSE on
the root-relative pose, 1/depth-weighted root error), backward, gradient-norm clipping to 1 and an Adam update for
both networks, as PoseTriplet's training loop does per batch. Samples/s = predicted frames per second. The PyTorch
side (`pip install "ptjax[bench]"`, torch 2.13 CPU) runs eagerly with its default threads; torch is imported only
here. Our full `update` from world motion (pairs made on device through random cameras) is timed too, for reference.
Both sides are also timed in mixed precision (`model.compute_dtype = "bfloat16"` vs `torch.autocast("cpu",
bfloat16)`): bf16 products, float32 parameters; `--skip-bf16` leaves that out. The headline ratio is float32 vs
float32. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import estimator as est
from ptjax.data import TRAIN_CLIPS, load_clips, pack_motions, sample_windows
from ptjax.estimator import pairs
from ptjax.estimator.train import update


def make_config(channels: int, widths: tuple[int, ...]):
    config = est.default_config()
    config.model.channels = channels
    config.model.traj_channels = channels
    config.model.filter_widths = widths
    config.pairs.adversarial = False
    return config


def make_pairs(config, batch: int, seed: int = 0):
    spec = est.spec_from_config(config)
    buffer = pack_motions(list(load_clips(TRAIN_CLIPS).values()), fps=30.0)
    motion = sample_windows(jax.random.PRNGKey(seed), buffer, batch, spec.receptive_field)
    world = pairs.augment_world(jax.random.PRNGKey(seed + 1), motion, spec)
    kp, cam = pairs.random_camera_pairs(jax.random.PRNGKey(seed + 2), world, spec)
    return motion, np.asarray(kp), np.asarray(cam)


def time_jax(config, batch: dict, steps: int, warmup: int) -> dict:
    state = est.init(jax.random.PRNGKey(0), config)
    step = jax.jit(update, donate_argnums=0)
    t0 = time.perf_counter()
    for _ in range(warmup):
        state, m = step(state, batch)
    jax.block_until_ready(state)
    compile_and_warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        state, m = step(state, batch)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - t0
    first = jax.tree_util.tree_leaves(batch)[0]
    return {"seconds_per_step": seconds / steps, "samples_per_second": first.shape[0] * steps / seconds,
            "warmup_seconds": round(compile_and_warmup, 2), "final_loss_pose": float(m["loss_pose"])}


def torch_models(widths, channels: int, dropout: float = 0.25):
    import torch
    from torch import nn

    class StridedTemporalModel(nn.Module):
        """VideoPose3D's temporal model, single-frame (strided) form, written for this comparison."""

        def __init__(self, joints_out: int):
            super().__init__()
            self.widths = widths
            self.joints_out = joints_out
            self.expand = nn.Conv1d(17 * 2, channels, widths[0], stride=widths[0], bias=False)
            self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
            self.convs = nn.ModuleList()
            self.bns = nn.ModuleList()
            for w in widths[1:]:
                self.convs.append(nn.Conv1d(channels, channels, w, stride=w, bias=False))
                self.bns.append(nn.BatchNorm1d(channels, momentum=0.1))
                self.convs.append(nn.Conv1d(channels, channels, 1, bias=False))
                self.bns.append(nn.BatchNorm1d(channels, momentum=0.1))
            self.shrink = nn.Conv1d(channels, joints_out * 3, 1)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):  # (B, T, 17, 2) -> (B, T_out, J, 3)
            b, t = x.shape[:2]
            x = x.reshape(b, t, -1).permute(0, 2, 1)
            x = self.drop(torch.relu(self.expand_bn(self.expand(x))))
            for i, w in enumerate(self.widths[1:]):
                res = x[:, :, w // 2::w]
                x = self.drop(torch.relu(self.bns[2 * i](self.convs[2 * i](x))))
                x = res + self.drop(torch.relu(self.bns[2 * i + 1](self.convs[2 * i + 1](x))))
            x = self.shrink(x).permute(0, 2, 1)
            return x.reshape(b, -1, self.joints_out, 3)

    return StridedTemporalModel(17), StridedTemporalModel(1)


def time_torch(widths, channels: int, kp: np.ndarray, cam: np.ndarray, steps: int, warmup: int,
               bf16: bool = False) -> dict:
    import contextlib

    import torch
    torch.manual_seed(0)
    def precision():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    pose_model, traj_model = torch_models(widths, channels)
    opt_pose = torch.optim.Adam(pose_model.parameters(), lr=3e-4)
    opt_traj = torch.optim.Adam(traj_model.parameters(), lr=3e-4)
    inputs = torch.from_numpy(np.array(kp))
    centre = torch.from_numpy(np.array(cam[:, cam.shape[1] // 2]))
    target_pose = centre - centre[:, :1]
    target_root = centre[:, 0]
    pose_model.train()
    traj_model.train()

    def step():
        opt_pose.zero_grad()
        with precision():
            pred = pose_model(inputs)[:, 0].float()
        loss = torch.mean((pred - target_pose) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pose_model.parameters(), max_norm=1.0)
        opt_pose.step()
        opt_traj.zero_grad()
        with precision():
            root = traj_model(inputs)[:, 0, 0].float()
        loss_t = torch.mean(torch.linalg.norm(root - target_root, dim=-1) / target_root[:, 2])
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_(traj_model.parameters(), max_norm=1.0)
        opt_traj.step()
        return float(loss.detach())

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    seconds = time.perf_counter() - t0
    return {"seconds_per_step": seconds / steps, "samples_per_second": len(kp) * steps / seconds,
            "warmup_seconds": round(warm, 2), "final_loss_pose": loss, "torch_version": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--widths", default="3,3,3")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-bf16", action="store_true", help="skip the bfloat16 rows (both sides)")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    widths = tuple(int(w) for w in args.widths.split(","))
    config = make_config(args.channels, widths)
    motion, kp, cam = make_pairs(config, args.batch)
    result = {
        "benchmark": "estimator training throughput (PoseNet + TrajNet step)",
        "receptive_field": int(np.prod(widths)), "channels": args.channels, "batch": args.batch,
        "steps": args.steps, "device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(),
        "cpu_count": os.cpu_count(), "machine": platform.machine(), "jax_version": jax.__version__,
    }
    ready_pairs = {"keypoints2d": jnp.asarray(kp), "joints3d": jnp.asarray(cam)}
    result["jax"] = time_jax(config, ready_pairs, args.steps, args.warmup)
    result["jax_update_from_motion"] = time_jax(config, {"motion": motion}, args.steps, args.warmup)
    if not args.skip_torch:
        result["torch_eager"] = time_torch(widths, args.channels, kp, cam, args.steps, args.warmup)
        result["speedup_jax_over_torch"] = round(
            result["jax"]["samples_per_second"] / result["torch_eager"]["samples_per_second"], 3)
    if not args.skip_bf16:
        # Mixed precision on both sides: bf16 products, float32 parameters and accumulation.
        config.model.compute_dtype = "bfloat16"
        result["jax_bf16"] = time_jax(config, ready_pairs, args.steps, args.warmup)
        if not args.skip_torch:
            result["torch_eager_autocast_bf16"] = time_torch(widths, args.channels, kp, cam, args.steps, args.warmup,
                                                             bf16=True)
            result["speedup_jax_over_torch_bf16"] = round(
                result["jax_bf16"]["samples_per_second"]
                / result["torch_eager_autocast_bf16"]["samples_per_second"], 3)
    for side in ("jax", "jax_update_from_motion", "torch_eager", "jax_bf16", "torch_eager_autocast_bf16"):
        if side in result:
            result[side] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result[side].items()}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
