"""Training-harness cost: (a) epoch overhead versus a bare PyTorch loop, (b) speedup efficiency.

(a) The harness's epoch (prunebench.bench.trainer.Trainer.train_epoch: plan, per-sample weighted
    loss, LR by progress, grad norm, observe, usage counts; its own training clock) against a bare
    loop over the same loader, model, batches and optimizer (mean cross-entropy, backward, step),
    timed the same way. Target: overhead <= 2%.
(b) Pruned epochs (OrderDP at prune ratios 0.3/0.5/0.7) against the full-data epoch:
    efficiency = (full epoch s / pruned epoch s) / (1 / (1 - realized ratio)). Target >= 0.95.

Epochs of every variant are interleaved round by round and each variant's fastest epoch is
compared (noise on these shared CPUs only ever adds time); each variant's first epoch is a warm-up
and not counted.
On CUDA it also counts host synchronizations per training epoch (sync debug mode "warn").

    python benchmarks/harness.py [--device cuda] [--epochs 5] [--subset 8000] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torch.nn.functional as F

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig, device_kind
from prunebench.bench.models import build_model
from prunebench.bench.trainer import Trainer, derive_seed
from prunebench.datasets import build_loader, get_spec
from prunebench.pruners import create_pruner

OVERHEAD_TARGET = 0.02
EFFICIENCY_TARGET = 0.95


class BareLoop:
    """The same model, optimizer and batches as a harness run, trained by the plainest loop."""

    def __init__(self, cfg: RunConfig, device: torch.device):
        self.device = device
        # Its own loader, built like the harness's, so the two never share a plan.
        self.loader = build_loader(
            cfg.dataset,
            "train",
            backend=cfg.loader,
            batch_size=cfg.batch_size,
            device=self.device,
            augment=cfg.augment,
            subset=cfg.subset,
            seed=cfg.seed,
        )
        self.on_cuda = self.device.type == "cuda"
        self.memory_format = torch.channels_last if self.on_cuda else torch.contiguous_format
        model = build_model(cfg.model, self.loader.spec, derive_seed(cfg.seed, "model"))
        self.model = model.to(device=self.device, memory_format=self.memory_format)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=cfg.lr / 10,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
        # The harness's full-data plans: the very same batches in the same order.
        self.plans = create_pruner("full", n=self.loader.num_samples, epochs=1, seed=cfg.seed)
        self.epoch = 0

    def train_epoch(self) -> float:
        """One epoch; returns its seconds (one device sync at the end, as the harness)."""
        indices = self.plans.plan_epoch(self.epoch).indices
        start = time.perf_counter()
        self.loader.set_plan(indices, self.epoch)
        self.model.train()
        for images, labels, _ in self.loader:
            images = images.contiguous(memory_format=self.memory_format)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.on_cuda):
                logits = self.model(images)
            loss = F.cross_entropy(logits.float(), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        if self.on_cuda:
            torch.cuda.synchronize(self.device)
        self.epoch += 1
        return time.perf_counter() - start


def harness_epoch(trainer: Trainer, count_syncs: bool) -> tuple[float, int]:
    """One harness epoch: its training-clock seconds and (on CUDA) host syncs inside it."""
    before = trainer.counters.train_seconds
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if count_syncs:
            torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.train_epoch(show_progress=False)
        finally:
            if count_syncs:
                torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    return trainer.counters.train_seconds - before, syncs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per variant")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--subset", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--pruner", default="orderdp")
    parser.add_argument("--ratios", default="0.3,0.5,0.7")
    parser.add_argument(
        "--threads", type=int, help="CPU threads (default: torch's; 1 is steadier on busy CPUs)"
    )
    args, ignored = parser.parse_known_args()  # nox passes the same arguments to every benchmark
    if ignored:
        print(f"(ignoring {' '.join(ignored)})")
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = get_spec(args.dataset)
    subset = min(args.subset, spec.train_size) if args.subset else None
    epochs = args.epochs + 1  # plus the warm-up

    def config(pruner: str, params: dict) -> RunConfig:
        return RunConfig(
            dataset=args.dataset,
            model=args.model,
            pruner=pruner,
            pruner_params=params,
            budget=parse_budget(f"epochs:{epochs}"),
            subset=subset,
            batch_size=args.batch_size,
            lr=0.05,
            device=args.device,
        )

    ratios = [float(r) for r in args.ratios.split(",")]
    full = Trainer(config("full", {}), device)
    bare = BareLoop(config("full", {}), device)
    pruned = {r: Trainer(config(args.pruner, {"prune_ratio": r}), device) for r in ratios}
    count_syncs = device.type == "cuda"

    times: dict[str, list[float]] = {"bare": [], "full": [], **{f"p{r}": [] for r in ratios}}
    syncs: list[int] = []
    for round_index in range(epochs):
        record = round_index > 0
        seconds = bare.train_epoch()
        if record:
            times["bare"].append(seconds)
        seconds, synced = harness_epoch(full, count_syncs)
        if record:
            times["full"].append(seconds)
            syncs.append(synced)
        for ratio, trainer in pruned.items():
            seconds, _ = harness_epoch(trainer, False)
            if record:
                times[f"p{ratio}"].append(seconds)

    best = {key: min(values) for key, values in times.items()}
    steps = -(-full.n // args.batch_size)
    print(
        f"harness benchmark: {args.model} on {args.dataset} (n={full.n}), batch "
        f"{args.batch_size}, {device_kind(device)} ({torch.get_num_threads()} threads), "
        f"fastest of {args.epochs} epochs"
    )
    overhead = best["full"] / best["bare"] - 1
    verdict = "ok" if overhead <= OVERHEAD_TARGET else "ABOVE TARGET"
    print(f"(a) bare loop epoch      {best['bare']:.3f} s")
    print(f"    harness epoch        {best['full']:.3f} s")
    print(f"    overhead             {overhead:+.2%}  (target <= {OVERHEAD_TARGET:.0%}: {verdict})")
    if count_syncs:
        print(f"    host syncs per epoch {max(syncs)} over {steps} steps (set_plan + epoch end)")
    print(f"(b) speedup efficiency of {args.pruner} (target >= {EFFICIENCY_TARGET}):")
    print("    ratio  realized  epoch_s  speedup  ideal  efficiency")
    for ratio, trainer in pruned.items():
        realized = trainer.summary()["realized_prune_ratio"]
        speedup = best["full"] / best[f"p{ratio}"]
        ideal = 1 / (1 - realized)
        efficiency = speedup / ideal
        flag = "" if efficiency >= EFFICIENCY_TARGET else "  BELOW TARGET"
        print(
            f"    {ratio:5.2f}  {realized:8.4f}  {best[f'p{ratio}']:7.3f}  {speedup:7.3f}  "
            f"{ideal:5.3f}  {efficiency:10.3f}{flag}"
        )


if __name__ == "__main__":
    main()
