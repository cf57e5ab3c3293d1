"""A prunebench pruner inside your own PyTorch training loop (CPU, well under a minute).

    python examples/own_loop.py                       # OrderDP, half the data per epoch
    python examples/own_loop.py --pruner infobatch    # InfoBatch (rescaled losses)
    python examples/own_loop.py --pruner full         # every sample, for comparison

The data is a seeded toy problem made here (your Dataset goes in its place: anything whose
``dataset[i]`` is ``(x, y)``); the model and optimizer are plain PyTorch. The three prunebench
lines are marked.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunebench import PrunedData


def toy_data(n: int, seed: int) -> TensorDataset:
    """Three Gaussian classes in 20 dimensions, a tenth of the labels flipped (the hard samples)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=generator)
    centres = torch.randn(3, 20, generator=torch.Generator().manual_seed(1234)) * 1.2
    x = centres[labels] + torch.randn(n, 20, generator=generator)
    noisy = torch.rand(n, generator=generator) < 0.1
    labels = torch.where(noisy, torch.randint(0, 3, (n,), generator=generator), labels)
    return TensorDataset(x, labels)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pruner", default="orderdp")
    parser.add_argument("--prune-ratio", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)  # the model's initialization (your script's own choice)
    train_set, test_set = toy_data(4000, seed=1), toy_data(2000, seed=2)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    ratio = {} if args.pruner == "full" else {"prune_ratio": args.prune_ratio}
    data = PrunedData(train_set, pruner=args.pruner, epochs=args.epochs, seed=args.seed, **ratio)
    loader = DataLoader(data, batch_sampler=data.batch_sampler(batch_size=128))
    for epoch in range(args.epochs):
        data.set_epoch(epoch)  # prunebench: this epoch's plan
        for idx, x, y in loader:
            per_sample = F.cross_entropy(model(x), y, reduction="none")
            loss = data.loss(idx, per_sample)  # prunebench: weights applied, losses observed
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    data.end_epoch()  # prunebench: the last epoch's losses reach the pruner

    x_test, y_test = test_set.tensors
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).double().mean().item()
    usage = data.usage_counts()
    result = {
        "test_accuracy": accuracy,
        "realized_prune_ratio": data.realized_prune_ratio,
        "samples_trained": float(data.samples_trained),
        "never_trained": float((usage == 0).sum()),
    }
    print(
        f"{args.pruner}: test accuracy {accuracy:.4f}, realized prune ratio "
        f"{data.realized_prune_ratio:.3f}, {data.samples_trained} samples trained, "
        f"{int(result['never_trained'])} samples never trained"
    )
    if args.pruner not in ("full", "random", "rs2"):
        print(f"hardest 5 samples (a static coreset's head): {data.coreset(5).tolist()}")
    return result


if __name__ == "__main__":
    main()
