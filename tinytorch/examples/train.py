"""Train an image classifier from the command line: ``python -m tinytorch.examples.train``.

With no arguments it trains an MLP on the bundled 8x8 digits (no download) in
a few seconds and reaches about 98% test accuracy. Also: MNIST and
Fashion-MNIST (``--dataset``), a CNN (``--model cnn``), SGD/Adam/AdamW,
learning-rate schedules, checkpoints after every epoch and on Ctrl-C,
``--resume`` with a trajectory identical to an uninterrupted run, PNG learning
curves and misclassified examples, and ``--backend torch`` to run the identical
training on PyTorch for comparison. ``--help`` lists every option.

The training code below is plain PyTorch code; ``torch`` is whichever library
``--backend`` picked.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from tinytorch.examples import _plots
from tinytorch.examples._app_data import DATASETS, DEFAULT_DATA_DIR, load_image_data
from tinytorch.examples._backend import BACKENDS, Backend, get_backend, limit_threads
from tinytorch.examples._models import MODELS, build_model, describe_model
from tinytorch.examples._progress import EpochProgress
from tinytorch.examples._run_state import RunState, StopRequest, check_checkpoint

__all__ = ["PRESETS", "main", "parse_args"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "cosine", "onecycle", "exponential")
PER_BATCH_SCHEDULERS = ("cosine", "onecycle")  # the others step once per epoch

#: Defaults per (dataset, model) for options not given on the command line.
# The digits MLP needs label smoothing to clear 98% on 1,438 training images.
PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("digits", "mlp"): dict(hidden=512, dropout=0.0, label_smoothing=0.1, epochs=40,
                            batch_size=32),
    ("digits", "cnn"): dict(hidden=128, dropout=0.5, label_smoothing=0.1, epochs=30,
                            batch_size=32),
    ("mnist", "mlp"): dict(hidden=512, dropout=0.2, label_smoothing=0.0, epochs=10,
                           batch_size=128),
    ("mnist", "cnn"): dict(hidden=128, dropout=0.25, label_smoothing=0.0, epochs=5,
                           batch_size=128),
}  # fmt: skip
COMMON_DEFAULTS: dict[str, Any] = dict(optimizer="adam", lr=1e-3, scheduler="cosine",
                                       momentum=0.9, seed=0, backend="tinytorch",
                                       data_dir=None)  # fmt: skip
#: Options that shape the training trajectory: on --resume they come from the checkpoint.
TRAJECTORY_KEYS = ("dataset", "model", "hidden", "dropout", "label_smoothing", "epochs",
                   "batch_size", "lr", "optimizer", "momentum", "weight_decay", "scheduler",
                   "seed", "limit_train", "limit_test", "backend")  # fmt: skip


def _prog() -> str:
    if Path(sys.argv[0]).name == "tinytorch-train":
        return "tinytorch-train"
    return "python -m tinytorch.examples.train"


def _build_parser() -> argparse.ArgumentParser:
    # Every default is None: unset options are filled from PRESETS (or, with
    # --resume, from the checkpoint), and "given explicitly" is "not None".
    presets = "\n".join(
        f"  {d:<6} {m}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items())
        for (d, m), values in PRESETS.items()
    )
    prog = _prog()
    epilog = (
        f"defaults by dataset and model (fashion-mnist as mnist; options override):\n"
        f"{presets}\n  all: adam, lr 0.001, cosine schedule, seed 0\n\n"
        f"examples:\n  {prog}\n  {prog} --dataset mnist --download --model cnn\n"
        f"  {prog} --resume runs/digits-mlp   # continue after Ctrl-C\n"
        f"  {prog} --backend torch --threads 1"
    )
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[1].replace("``", ""),
                                epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add = p.add_argument
    add("--dataset", choices=DATASETS, help="dataset (default digits: bundled, no download)")
    add("--data-dir", help=f"folder with the MNIST IDX files (default {DEFAULT_DATA_DIR})")
    add("--download", action="store_true", default=None, help="download missing MNIST files")
    add("--model", choices=MODELS, help="classifier (default mlp)")
    add("--hidden", type=int, help="hidden width (default: by dataset and model)")
    add("--dropout", type=float, help="dropout probability after hidden layers")
    add("--label-smoothing", type=float, help="cross-entropy label smoothing in [0, 1)")
    add("--epochs", type=int, help="epochs to train in total (default: by dataset and model)")
    add("--batch-size", type=int, help="training batch size")
    add("--lr", type=float, help="learning rate (peak rate for onecycle)")
    add("--optimizer", choices=OPTIMIZERS, help="optimizer (default adam)")
    add("--momentum", type=float, help="SGD momentum (default 0.9)")
    add("--weight-decay", type=float, help="weight decay (default 0; 0.01 for adamw)")
    add("--scheduler", choices=SCHEDULERS,
        help="learning-rate schedule: cosine/onecycle step per batch, step (x0.1 every "
             "third of the epochs)/exponential (x0.9) per epoch")  # fmt: skip
    add("--seed", type=int, help="seed of initialisation, shuffling and dropout (default 0)")
    add("--out", help="output folder (default runs/<dataset>-<model>)")
    add("--resume", metavar="CHECKPOINT", help="continue from a checkpoint file or its folder")
    add("--no-plots", action="store_true", default=None, help="skip the PNG plots")
    add("--quiet", action="store_true", default=None, help="print only the final summary")
    add("--limit-train", type=int, help="use only the first N training images")
    add("--limit-test", type=int, help="use only the first N test images")
    add("--backend", choices=BACKENDS, help="library to train with (default tinytorch)")
    add("--threads", type=int, help="CPU threads for the math (default: the library's choice)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; unset options stay None (see :func:`resolve_config`)."""
    return _build_parser().parse_args(argv)


def resolve_config(args: argparse.Namespace, saved: dict[str, Any] | None) -> dict[str, Any]:
    """The full configuration: explicit options, then the checkpoint's or the presets.

    Raises:
        ValueError: ``--resume`` with an option that contradicts the checkpoint.
    """
    run_only = ("out", "resume", "no_plots", "quiet", "threads")  # how to run, not what to train
    given = {k: v for k, v in vars(args).items() if v is not None and k not in run_only}
    if saved is not None:
        config = dict(saved)
        for key in TRAJECTORY_KEYS:
            if key in given and given[key] != saved.get(key):
                extendable = saved["scheduler"] not in PER_BATCH_SCHEDULERS
                if key == "epochs" and extendable and given[key] > saved["epochs"]:
                    continue
                raise ValueError(
                    f"--{key.replace('_', '-')} {given[key]} contradicts the checkpoint's "
                    f"{saved.get(key)}; drop it to resume, or start a new run"
                )
        config.update(given)
        return config
    config = {**COMMON_DEFAULTS, "dataset": "digits", "model": "mlp"}
    config.update(given)
    preset_key = (config["dataset"].replace("fashion-mnist", "mnist"), config["model"])
    for key, value in PRESETS[preset_key].items():
        config.setdefault(key, value)
    config.setdefault("weight_decay", 0.01 if config["optimizer"] == "adamw" else 0.0)
    config.setdefault("limit_train", None)
    config.setdefault("limit_test", None)
    for key in ("epochs", "batch_size", "hidden"):
        if config[key] <= 0:
            raise ValueError(f"--{key.replace('_', '-')} must be positive, got {config[key]}")
    for key in ("dropout", "label_smoothing"):
        if not 0.0 <= config[key] < 1.0:
            raise ValueError(f"--{key.replace('_', '-')} must be in [0, 1), got {config[key]}")
    return config


def make_optimizer(torch: Any, model: Any, config: dict[str, Any]) -> Any:
    params, lr, wd = model.parameters(), config["lr"], config["weight_decay"]
    if config["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config["momentum"], weight_decay=wd)
    if config["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


def make_scheduler(torch: Any, optimizer: Any, config: dict[str, Any], steps: int) -> Any:
    """The schedule; ``steps`` is batches per epoch (cosine and onecycle step per batch)."""
    sched, epochs = torch.optim.lr_scheduler, config["epochs"]
    kind = config["scheduler"]
    if kind == "step":
        return sched.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if kind == "exponential":
        return sched.ExponentialLR(optimizer, gamma=0.9)
    if kind == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=epochs * steps)
    if kind == "onecycle":
        return sched.OneCycleLR(optimizer, max_lr=config["lr"], total_steps=epochs * steps)
    return None


def evaluate(torch: Any, model: Any, loader: Any) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and the predictions over ``loader`` (eval mode, no grad)."""
    F = torch.nn.functional
    model.eval()
    total_loss, correct, count, preds = 0.0, 0, 0, []
    with torch.no_grad():
        for xb, yb in loader:
            logits = model(xb)
            total_loss += F.cross_entropy(logits, yb, reduction="sum").item()
            pred = logits.argmax(dim=1)
            correct += int((pred == yb).sum().item())
            count += len(yb)
            preds.append(pred.numpy())
    model.train()
    return total_loss / count, correct / count, np.concatenate(preds)


def _resume_hint(path: Path) -> str:
    return f"{_prog()} --resume {path}"


def main(argv: list[str] | None = None) -> int:
    """Run the app; returns the exit status (0 done, 130 interrupted, 2 bad input)."""
    args = parse_args(argv)
    try:
        return _main(args)
    except KeyboardInterrupt:  # before training started, or a second Ctrl-C
        print("\ninterrupted", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    threads = contextlib.ExitStack()
    try:
        saved = None
        if args.resume is not None:
            path = Path(args.resume)
            name = (
                "checkpoint.pt" if (path / "checkpoint.pt").exists() else "checkpoint.safetensors"
            )
            ckpt_path = path / name if path.is_dir() else path
            backend = get_backend("torch" if ckpt_path.suffix == ".pt" else "tinytorch")
            saved = backend.load(ckpt_path)
            check_checkpoint(saved, str(ckpt_path))
            if args.out is None:
                args.out = str(ckpt_path.parent)
        config = resolve_config(args, None if saved is None else saved["config"])
        backend = get_backend(config["backend"])
        threads.enter_context(limit_threads(backend, args.threads))
        data = load_image_data(config["dataset"], config["data_dir"], bool(config.get("download")),
                               config["limit_train"], config["limit_test"])  # fmt: skip
    except (ValueError, OSError, ImportError, RuntimeError) as e:  # bad input or missing data
        threads.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out or f"runs/{config['dataset']}-{config['model']}")
    out.mkdir(parents=True, exist_ok=True)
    with threads:
        try:
            return _train(backend, config, data, out, saved, quiet=bool(args.quiet),
                          plots=not args.no_plots)  # fmt: skip
        except KeyboardInterrupt:
            print(f"\ninterrupted; the last checkpoint is in {out} "
                  f"(resume with: {_resume_hint(out)})", file=sys.stderr)  # fmt: skip
            return 130


def _train(backend: Backend, config: dict[str, Any], data: Any, out: Path,
           saved: dict[str, Any] | None, quiet: bool, plots: bool) -> int:  # fmt: skip
    torch = backend.torch
    F = torch.nn.functional
    TensorDataset, DataLoader = torch.utils.data.TensorDataset, torch.utils.data.DataLoader
    say = (lambda *a: None) if quiet else print
    started = time.perf_counter()

    x_train, x_test = data.normalized()
    train_set = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(data.train_labels))
    test_set = TensorDataset(torch.from_numpy(x_test), torch.from_numpy(data.test_labels))
    shuffle_gen = torch.Generator().manual_seed(config["seed"])
    train_loader = DataLoader(train_set, batch_size=config["batch_size"], shuffle=True,
                              generator=shuffle_gen)  # fmt: skip
    test_loader = DataLoader(test_set, batch_size=1000)

    torch.manual_seed(config["seed"])
    model = build_model(torch.nn, config["model"], data.image_shape, len(data.classes),
                        config["hidden"], config["dropout"])  # fmt: skip
    optimizer = make_optimizer(torch, model, config)
    scheduler = make_scheduler(torch, optimizer, config, len(train_loader))
    per_batch = config["scheduler"] in PER_BATCH_SCHEDULERS
    smoothing = config["label_smoothing"]
    state = RunState(loader_rng=shuffle_gen.get_state())
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        state = RunState.from_checkpoint(saved)
        torch.set_rng_state(saved["rng"]["global"])
    ckpt_path = out / backend.checkpoint_name

    def save_checkpoint() -> None:
        ckpt = state.to_checkpoint(config, model, optimizer, scheduler, torch.get_rng_state())
        backend.save(ckpt, ckpt_path)

    epochs, n_train = config["epochs"], len(train_set)
    say(f"{backend.name}: {data.name} ({n_train:,} train / {len(test_set):,} test images) | "
        f"{config['model']} {describe_model(model)}")  # fmt: skip
    say(
        f"{config['optimizer']} lr {config['lr']:g}, {config['scheduler']} schedule | "
        f"{epochs} epochs x {len(train_loader)} batches of {config['batch_size']} | out {out}"
    )
    if state.epoch or state.batch:
        say(f"resuming at epoch {state.epoch + 1}, batch {state.batch}")
    last_eval = None
    with StopRequest() as stop:
        for epoch in range(state.epoch, epochs):
            shuffle_gen.set_state(state.loader_rng)  # replays a resumed epoch's order
            t0 = time.perf_counter() - state.seconds
            bar = EpochProgress(n_train, f"epoch {epoch + 1}/{epochs}", not quiet, done=state.seen)
            batches = iter(train_loader)
            for _ in range(state.batch):  # already done before the interruption
                next(batches)
            for xb, yb in batches:
                loss = F.cross_entropy(model(xb), yb, label_smoothing=smoothing)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if per_batch:
                    scheduler.step()
                state.batch += 1
                state.seen += len(yb)
                state.loss_sum += loss.item() * len(yb)
                bar.update(len(yb), state.loss_sum / state.seen)
                if stop.requested and state.seen < n_train:
                    bar.close()
                    state.seconds = time.perf_counter() - t0
                    save_checkpoint()
                    print(f"stopped in epoch {epoch + 1} after batch {state.batch} of "
                          f"{len(train_loader)}; checkpoint saved to {ckpt_path}\n"
                          f"resume with: {_resume_hint(ckpt_path)}")  # fmt: skip
                    return 130
            bar.close()
            rate = bar.rate
            if scheduler is not None and not per_batch:
                scheduler.step()
            last_eval = test_loss, test_acc, _ = evaluate(torch, model, test_loader)
            seconds = time.perf_counter() - t0
            lr = optimizer.param_groups[0]["lr"]
            for key, value in zip(state.history, (epoch + 1, state.loss_sum / state.seen,
                                                  test_loss, test_acc, lr, seconds)):  # fmt: skip
                state.history[key].append(value)
            say(
                f"epoch {epoch + 1:>{len(str(epochs))}}/{epochs}  train loss "
                f"{state.loss_sum / state.seen:.4f}  test loss {test_loss:.4f}  test acc "
                f"{100 * test_acc:6.2f}%  lr {lr:.2e}  {seconds:5.1f}s  {rate:,.0f} samples/s"
            )
            state.end_epoch()
            state.loader_rng = shuffle_gen.get_state()
            save_checkpoint()
            if stop.requested and epoch + 1 < epochs:
                print(f"stopped after epoch {epoch + 1}; checkpoint saved to {ckpt_path}\n"
                      f"resume with: {_resume_hint(ckpt_path)}")  # fmt: skip
                return 130
    if last_eval is None:  # resumed a finished run: nothing trained, evaluate once
        last_eval = evaluate(torch, model, test_loader)
    return _finish(backend, config, data, out, model, last_eval, state, started, plots)


def _finish(backend: Backend, config: dict[str, Any], data: Any, out: Path, model: Any,
            last_eval: tuple[float, float, np.ndarray], state: RunState, started: float,
            plots: bool) -> int:  # fmt: skip
    """Weights, metrics, plots and the summary."""
    hist = state.history
    test_loss, test_acc, preds = last_eval
    backend.save(model.state_dict(), out / backend.weights_name)
    best = int(np.argmax(hist["test_acc"]))
    train_seconds = sum(hist["seconds"])
    metrics = {"config": config, "final_test_acc": test_acc, "final_test_loss": test_loss,
               "best_test_acc": hist["test_acc"][best], "best_epoch": hist["epoch"][best],
               "train_seconds": train_seconds, "history": hist}  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    files = [backend.checkpoint_name, backend.weights_name, "metrics.json"]
    title = f"{data.name} {config['model']} ({backend.name})"
    n_wrong = int((preds != data.test_labels).sum())
    if plots and _plots.have_matplotlib():
        smoothing = config["label_smoothing"]
        label = f"train (label smoothing {smoothing:g})" if smoothing else "train"
        _plots.save_curves(hist, out / "curves.png", title, label)
        _plots.save_misclassified(data.test_images, data.test_labels, preds, data.classes,
                                  out / "misclassified.png", title)  # fmt: skip
        files += ["curves.png", "misclassified.png"]
    elif plots:
        print(_plots.MISSING_MATPLOTLIB)
    print(
        f"done: {len(hist['epoch'])} epochs, {train_seconds:.1f}s training, "
        f"{time.perf_counter() - started:.1f}s in all ({backend.name})"
    )
    print(
        f"  final test accuracy {100 * test_acc:.2f}% ({n_wrong} of {len(preds)} wrong), "
        f"loss {test_loss:.4f}; best {100 * hist['test_acc'][best]:.2f}% at epoch "
        f"{hist['epoch'][best]}"
    )
    print(f"  files in {out}/: {', '.join(files)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
