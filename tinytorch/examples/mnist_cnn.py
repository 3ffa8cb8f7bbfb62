"""A compact CNN on MNIST, in the shape of PyTorch's classic example script.

    python -m tinytorch.examples.mnist_cnn --data-dir DIR [--download]

Two 5x5 convolutions with max-pooling and two linear layers (LeNet-like, 80k
parameters), Adam with a step decay, one line per epoch with test loss and
accuracy; about 99% after 3 epochs. The data go through the DataLoader's fast
path: ``MNIST.as_arrays()`` wrapped in a ``TensorDataset``. ``--fashion``
trains on Fashion-MNIST instead; ``--save FILE`` writes the weights
(safetensors with tinytorch, torch's format with ``--backend torch``).

Shape letters: N batch, C channels, H height, W width.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tinytorch.examples._app_data import DEFAULT_DATA_DIR
from tinytorch.examples._backend import run_main

__all__ = ["build_net", "main"]


def build_net(torch: Any) -> Any:
    nn: Any  # the backend's nn, chosen at run time
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 5)  # (N, 1, 28, 28) -> (N, 16, 24, 24)
            self.conv2 = nn.Conv2d(16, 32, 5)  # (N, 16, 12, 12) -> (N, 32, 8, 8)
            self.dropout = nn.Dropout(0.25)
            self.fc1 = nn.Linear(32 * 4 * 4, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x: Any) -> Any:
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 16, 12, 12)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 32, 4, 4)
            x = torch.flatten(x, 1)  # (N, 512)
            x = self.dropout(F.relu(self.fc1(x)))
            return self.fc2(x)  # logits (N, 10)

    return Net()


def load_split(torch: Any, args: Any, train: bool) -> Any:
    """One split as a TensorDataset of standardised images and labels."""
    from tinytorch import datasets

    cls = datasets.FashionMNIST if args.fashion else datasets.MNIST
    images, labels = cls(args.data_dir, train=train, download=args.download).as_arrays()
    limit = args.limit_train if train else args.limit_test
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    images = (images - 0.1307) / 0.3081  # MNIST's mean and std, as torchvision's examples
    return torch.utils.data.TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


def train_epoch(torch: Any, model: Any, loader: Any, optimizer: Any, epoch: int, log: int) -> None:
    F = torch.nn.functional
    model.train()
    seen, start = 0, time.perf_counter()
    for batch_idx, (data, target) in enumerate(loader, 1):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
        seen += len(data)
        if log and batch_idx % log == 0:
            rate = seen / (time.perf_counter() - start)
            print(f"  epoch {epoch} [{seen:>5}/{len(loader.dataset)}]  loss {loss.item():.4f}  "
                  f"{rate:,.0f} images/s")  # fmt: skip


def test(torch: Any, model: Any, loader: Any) -> tuple[float, float]:
    F = torch.nn.functional
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in loader:
            output = model(data)
            loss += F.cross_entropy(output, target, reduction="sum").item()
            correct += int((output.argmax(dim=1) == target).sum().item())
    n = len(loader.dataset)
    return loss / n, correct / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR.expanduser()),
                   help="folder with the IDX files (or MNIST/raw below it)")  # fmt: skip
    p.add_argument("--download", action="store_true", help="download missing files")
    p.add_argument("--fashion", action="store_true", help="Fashion-MNIST instead of MNIST")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    p.add_argument("--gamma", type=float, default=0.5, help="learning-rate decay per epoch")
    p.add_argument("--log-interval", type=int, default=200, help="batches between lines (0: off)")
    p.add_argument("--limit-train", type=int, help="use only the first N training images")
    p.add_argument("--limit-test", type=int, help="use only the first N test images")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--save", metavar="FILE", help="save the trained weights")
    return run_main(p, argv, run)


def run(args: argparse.Namespace, torch: Any) -> int:
    """Train and report; ``torch`` is the backend's module."""

    try:
        train_set, test_set = load_split(torch, args, True), load_split(torch, args, False)
    except FileNotFoundError as e:
        print(f"error: {e}")
        return 2
    torch.manual_seed(args.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=1000)
    model = build_net(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=args.gamma)
    print(f"{len(train_set):,} train / {len(test_set):,} test images, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters, {args.backend}")  # fmt: skip
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        train_epoch(torch, model, train_loader, optimizer, epoch, args.log_interval)
        test_loss, accuracy = test(torch, model, test_loader)
        scheduler.step()
        print(f"epoch {epoch}: test loss {test_loss:.4f}, accuracy {100 * accuracy:.2f}% "
              f"({time.perf_counter() - t0:.1f}s)")  # fmt: skip
    print(f"final test loss {test_loss:.4f}, accuracy {100 * accuracy:.2f}%, "
          f"{time.perf_counter() - start:.1f}s")  # fmt: skip
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), args.save)
        print(f"weights saved to {args.save}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
