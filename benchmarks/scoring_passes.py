"""Per-epoch passes of each pruner: forward+backward (trained) and forward-only (scoring).

Trains each named pruner with the real trainer (no MLflow) and prints, epoch by epoch, the samples
trained and the forward-only scoring passes, then the run's realized prune ratio and the mean
forward-only passes per epoch. Example (a Fashion-MNIST subset on the CPU, about a minute):

    PYTHONPATH=. python benchmarks/scoring_passes.py --dataset fashion_mnist --subset 2000 \
        --epochs 8 --param ies:threshold=0.05
"""

from __future__ import annotations

import argparse

import torch

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig, parse_param
from prunebench.bench.distributed import Dist
from prunebench.bench.trainer import Trainer

METHODS: dict[str, dict[str, object]] = {
    "seta": {"prune_ratio": 0.3},
    "static_random": {"prune_ratio": 0.5},
    "selective_backprop": {},
    "kakurenbo": {},
    "ies": {},
    "orderdp_iteration": {"prune_ratio": 0.5},
    "el2n": {"prune_ratio": 0.5},
    "forgetting": {"prune_ratio": 0.5},
}


def measure(name: str, params: dict[str, object], args: argparse.Namespace) -> None:
    cfg = RunConfig(
        dataset=args.dataset,
        model=args.model,
        pruner=name,
        pruner_params=params,
        budget=parse_budget(f"epochs:{args.epochs}"),
        subset=args.subset,
        batch_size=args.batch_size,
        lr=args.lr,
        device="cpu",
        eval_points=1,
        seed=args.seed,
        num_threads=args.threads,
    )
    trainer = Trainer(cfg, Dist(torch.device("cpu")))
    trained_before = scored_before = 0.0
    rows = []
    for _ in range(args.epochs):
        entry = trainer.train_epoch(show_progress=False)
        trained = entry["samples_trained"] - trained_before
        scored = entry["scoring_forward_passes"] - scored_before
        trained_before, scored_before = entry["samples_trained"], entry["scoring_forward_passes"]
        rows.append(f"{int(trained)}/{int(scored)}")
    summary = trainer.summary()
    per_epoch = scored_before / args.epochs
    print(
        f"{name:20s} params={params} trained/forward-only per epoch: {' '.join(rows)}; "
        f"realized prune ratio {summary['realized_prune_ratio']:.3f}; forward-only passes per "
        f"epoch {per_epoch:.0f} ({per_epoch / trainer.n:.3f} n); "
        f"final accuracy {summary['final_test_accuracy']:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--subset", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="METHOD:KEY=VALUE",
        help="override a method's parameter, e.g. ies:threshold=0.05; repeatable",
    )
    args = parser.parse_args()
    params = {name: dict(values) for name, values in METHODS.items()}
    for item in args.param:
        name, _, assignment = item.partition(":")
        key, value = parse_param(assignment)  # the CLI's --param rule: a TOML literal
        params.setdefault(name, {})[key] = value
    for name in args.methods.split(","):
        measure(name, params.get(name, {}), args)


if __name__ == "__main__":
    main()
