"""Training-harness cost: (a) epoch overhead versus a bare PyTorch loop, (b) speedup efficiency.

(a) The harness's epoch (prunebench.bench.trainer.Trainer.train_epoch: plan, per-sample weighted
    loss, LR by progress, grad norm, observe, usage counts; its own training clock) against a bare
    loop over the same loader, model, batches and optimizer (mean cross-entropy, backward, step),
    timed the same way. Target: overhead <= 2%.
(b) Pruned epochs (OrderDP at prune ratios 0.3/0.5/0.7) against the full-data epoch:
    efficiency = (full epoch s / pruned epoch s) / (1 / (1 - realized ratio)). Target >= 0.95.
(c) Keeping pruner scores in sync on 2 gloo processes (CPU), at n = 50,000 and 1,281,167: the
    per-epoch cost (buffering each step's losses, one all-gather of (index, loss) pairs, the
    pruner's observe, the state-fingerprint check) as a share of the epoch, and the per-step
    all-gather it replaces. The epoch time is extrapolated from timed DDP steps of the model at
    the per-rank batch on these CPUs (epoch = steps per epoch x seconds per step). Target < 1%.

Every round runs one epoch of every variant (bare, harness, each ratio) in a fresh random order
(benchmarks/_interleave.py), after one warm-up round; each figure is a per-round ratio of two
epochs of the same round, printed as the median over rounds with its 95% interval. The targets
are met when the whole interval is: overhead's upper end <= 2%, efficiency's lower end >= 0.95.
On CUDA it also counts host synchronizations per training epoch (sync debug mode "warn").

    python benchmarks/harness.py [--device cuda] [--rounds 25] [--subset 8000] [--threads 1]
                                 [--parts a,b,c]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from _interleave import CONFIDENCE, fewest_rounds, interleaved, median_interval

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.devices import device_kind
from prunebench.bench.distributed import Dist
from prunebench.bench.models import build_model
from prunebench.bench.trainer import Trainer, derive_seed
from prunebench.datasets import build_loader, get_spec
from prunebench.pruners import create_pruner

OVERHEAD_TARGET = 0.02
EFFICIENCY_TARGET = 0.95
SYNC_TARGET = 0.01
SYNC_SIZES = (50_000, 1_281_167)
SYNC_PROCESSES = 2


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


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def sync_worker(n: int, batch_size: int, model_name: str, dataset: str) -> dict[str, float]:
    """One of the gloo processes of part (c): the sync costs of one epoch at training-set size n."""
    from prunebench.bench.distributed import GatherObserver
    from prunebench.bench.launch import process_group

    torch.manual_seed(0)
    with process_group("cpu") as dist:
        pruner = create_pruner("orderdp", n=n, epochs=10, seed=0, prune_ratio=0.3)
        shard = dist.shard(pruner.plan_epoch(0).indices, None, batch_size)
        per_rank = batch_size // dist.world_size
        losses = torch.rand(len(shard.indices))

        def epoch_of_observations() -> None:
            observer = GatherObserver(pruner, shard, dist.device)
            for start in range(0, len(shard.indices), per_rank):
                stop = start + per_rank
                observer.add(shard.indices[start:stop], losses[start:stop], start)
            observer.flush()
            dist.check_in_sync(pruner, 0)

        def per_step_gathers() -> None:
            for _ in range(shard.steps):
                chunk_indices = torch.zeros(per_rank, dtype=torch.int64)
                chunk_losses = torch.zeros(per_rank)
                for chunk in (chunk_indices, chunk_losses):
                    gathered = chunk.new_empty(per_rank * dist.world_size)
                    torch.distributed.all_gather_single(gathered, chunk)

        epoch_of_observations()  # warm-up
        per_epoch = min(_timed(epoch_of_observations) for _ in range(3))
        per_step = _timed(per_step_gathers)

        # Seconds per DDP training step of the model at the per-rank batch, on this CPU.
        spec = get_spec(dataset)
        model = build_model(model_name, spec, derive_seed(0, "model"))
        train_model = dist.wrap(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        images = torch.randn(per_rank, spec.channels, spec.height, spec.width)
        labels = torch.randint(spec.num_classes, (per_rank,))

        def step() -> None:
            loss = F.cross_entropy(train_model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        for _ in range(2):
            step()
        step_seconds = min(_timed(step) for _ in range(5))
        return {
            "per_epoch": per_epoch,
            "per_step": per_step,
            "epoch": step_seconds * shard.steps,
            "steps": float(shard.steps),
            "planned": float(shard.planned),
        }


def sync_benchmark(args: argparse.Namespace) -> None:
    """Part (c): print the per-epoch sync cost as a share of the epoch at each n."""
    from prunebench.bench.launch import launch

    print(
        f"(c) keeping scores in sync on {SYNC_PROCESSES} gloo processes (orderdp at 0.3, "
        f"global batch {args.batch_size}, epoch from timed DDP steps of {args.model}); "
        f"target < {SYNC_TARGET:.0%} of an epoch"
    )
    print("    n          steps  epoch_s   per-epoch sync_s  share    per-step sync_s  share")
    for n in SYNC_SIZES:
        ranks = launch(SYNC_PROCESSES, sync_worker, n, args.batch_size, args.model, args.dataset)
        # The slowest rank sets the pace of a collective.
        cost = {key: max(rank[key] for rank in ranks) for key in ranks[0]}
        share = cost["per_epoch"] / cost["epoch"]
        step_share = cost["per_step"] / cost["epoch"]
        verdict = "ok" if share < SYNC_TARGET else "ABOVE TARGET"
        print(
            f"    {n:<9,d}  {int(cost['steps']):5d}  {cost['epoch']:7.1f}  "
            f"{cost['per_epoch']:16.4f}  {share:6.3%}  {cost['per_step']:15.4f}  "
            f"{step_share:6.3%}  {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=25, help="timed epochs per variant")
    parser.add_argument("--seed", type=int, default=0, help="seed of the variants' order")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--subset", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--pruner", default="orderdp")
    parser.add_argument("--ratios", default="0.3,0.5,0.7")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (default 1: with every core busy, any other process stalls an epoch)",
    )
    parser.add_argument("--parts", default="a,b,c", help="which parts to run (default: a,b,c)")
    args, ignored = parser.parse_known_args()  # nox passes the same arguments to every benchmark
    if ignored:
        print(f"(ignoring {' '.join(ignored)})")
    parts = set(args.parts.split(","))
    if args.rounds < fewest_rounds():
        parser.error(f"--rounds must be at least {fewest_rounds()} for a 95% interval of a median")
    if parts & {"a", "b"}:
        overhead_benchmark(args)
    if "c" in parts:
        sync_benchmark(args)


def overhead_benchmark(args: argparse.Namespace) -> None:
    """Parts (a) and (b): harness overhead and speedup efficiency, one interleaved loop."""
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = get_spec(args.dataset)
    subset = min(args.subset, spec.train_size) if args.subset else None
    epochs = args.rounds + 1  # plus the warm-up round

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
    full = Trainer(config("full", {}), Dist(device))
    bare = BareLoop(config("full", {}), device)
    pruned = {r: Trainer(config(args.pruner, {"prune_ratio": r}), Dist(device)) for r in ratios}
    count_syncs = device.type == "cuda"
    syncs: list[int] = []
    samples: dict[float, list[int]] = {r: [] for r in ratios}

    def full_epoch() -> float:
        seconds, synced = harness_epoch(full, count_syncs)
        syncs.append(synced)
        return seconds

    def pruned_epoch(ratio: float) -> Callable[[], float]:
        trainer = pruned[ratio]

        def epoch() -> float:
            before = trainer.counters.samples_trained
            seconds, _ = harness_epoch(trainer, False)
            samples[ratio].append(trainer.counters.samples_trained - before)
            return seconds

        return epoch

    variants = {"bare": bare.train_epoch, "full": full_epoch}
    variants.update({f"p{r}": pruned_epoch(r) for r in ratios})
    times = interleaved(variants, args.rounds, seed=args.seed)

    steps = -(-full.n // args.batch_size)
    print(
        f"harness benchmark: {args.model} on {args.dataset} (n={full.n}), batch "
        f"{args.batch_size}, {device_kind(device)} ({torch.get_num_threads()} threads), "
        f"{args.rounds} rounds of every variant in random order after a warm-up round; "
        f"medians with {CONFIDENCE:.0%} intervals"
    )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    overhead = median_interval(times["full"] / times["bare"] - 1)
    verdict = "ok" if overhead.high <= OVERHEAD_TARGET else "ABOVE TARGET"
    print(f"(a) bare loop epoch      {median_interval(times['bare']).text()} s")
    print(f"    harness epoch        {median_interval(times['full']).text()} s")
    print(
        f"    overhead             {overhead.text('+.2%')}  "
        f"(target: upper end <= {OVERHEAD_TARGET:.0%}: {verdict})"
    )
    if count_syncs:
        print(f"    host syncs per epoch {max(syncs)} over {steps} steps (set_plan + epoch end)")
    print(f"(b) speedup efficiency of {args.pruner} (target: lower end >= {EFFICIENCY_TARGET}):")
    print("    ratio  realized  epoch_s  efficiency (95% interval)")
    for ratio in ratios:
        # Ideal speedup of each round: the full epoch's samples over this epoch's (the epoch's
        # own realized ratio, so a pruner that trains more some epochs is not penalized).
        kept = np.asarray(samples[ratio][1:], dtype=np.float64) / full.n
        efficiency = median_interval(times["full"] / times[f"p{ratio}"] * kept)
        realized = 1 - kept.mean()
        flag = "" if efficiency.low >= EFFICIENCY_TARGET else "  BELOW TARGET"
        print(
            f"    {ratio:5.2f}  {realized:8.4f}  {np.median(times[f'p{ratio}']):7.3f}  "
            f"{efficiency.text()}{flag}"
        )


if __name__ == "__main__":
    main()
