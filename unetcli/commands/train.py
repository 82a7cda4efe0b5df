"""`unet train`: fit a model, keeping checkpoints, metrics.csv and TensorBoard logs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from unetcli.build import (
    build,
    build_layout,
    build_model,
    build_optimizer,
    build_scheduler,
    make_loader,
    seed_everything,
)
from unetcli.checkpoints import load_checkpoint, save_checkpoint
from unetcli.config_dir import config_dir
from unetcli.datasets.torch_dataset import SegmentationDataset, build_transform
from unetcli.errors import UnetError, user_errors
from unetcli.hardware import resolve_hardware
from unetcli.losses.weight_map import WeightMapCache
from unetcli.summary import format_metrics, print_summary
from unetcli.sweep import RESULT_FILE
from unetcli.task import Task
from unetcli.training.early_stopping import EarlyStopping
from unetcli.training.history import MetricsCSV
from unetcli.training.images import comparison_grid
from unetcli.training.loop import score, train_epoch
from unetcli.training.schedulers import WarmupCosineLR


def _improved(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value > best if mode == "max" else value < best)


def _weight_maps(loss_fn: torch.nn.Module, dataset_cfg: DictConfig) -> WeightMapCache | None:
    """A weight-map cache for losses that weigh pixels by their mask (weighted_ce)."""
    if not getattr(loss_fn, "needs_weight_map", False):
        return None
    size = dataset_cfg.get("image_size")
    return WeightMapCache(loss_fn.weight_map, tuple(int(v) for v in size) if size else None)


def _fill_steps_per_epoch(cfg: DictConfig, loader_steps: int) -> None:
    """Give per-step schedules (onecycle, cosine_warmup) the number of steps in an epoch."""
    interval = cfg.scheduler.get("interval", "epoch")
    if interval not in ("epoch", "step"):
        raise UnetError(f"scheduler.interval must be epoch or step, got {interval!r}")
    factory = cfg.scheduler.get("factory")
    if factory is None or "steps_per_epoch" not in factory:
        return
    if factory.steps_per_epoch is None:
        cap = cfg.trainer.max_steps_per_epoch
        steps = min(loader_steps, int(cap)) if cap else loader_steps
        factory.steps_per_epoch = max(steps, 1) if interval == "step" else 1


def run(cfg: DictConfig) -> dict:
    """Train as `cfg` says; returns the result written to result.json."""
    started = time.time()
    run_dir = Path(cfg.paths.run_dir)
    trainer = cfg.trainer
    if trainer.monitor_mode not in ("max", "min"):
        raise UnetError(f"trainer.monitor_mode must be max or min, got {trainer.monitor_mode!r}")
    generator = seed_everything(int(cfg.seed))
    runtime = resolve_hardware(cfg.hardware)

    layout = build_layout(cfg.dataset)
    train_samples, val_samples = layout.split(float(cfg.dataset.validation_size), int(cfg.seed))
    if not train_samples:
        raise UnetError(
            f"the training split of {layout.root} is empty; lower dataset.validation_size"
        )
    layout.check(train_samples + val_samples)
    task = Task.from_config(cfg.dataset)
    loss_fn = build(cfg.loss, "loss", task=task)
    train_set = SegmentationDataset(
        layout,
        train_samples,
        build_transform(cfg.dataset, cfg.augmentation, "train", seed=int(cfg.seed)),
        _weight_maps(loss_fn, cfg.dataset),
    )
    val_set = SegmentationDataset(
        layout,
        val_samples,
        build_transform(cfg.dataset, cfg.augmentation, "val"),
        _weight_maps(loss_fn, cfg.dataset),
    )
    batch_size = int(trainer.batch_size)
    train_loader = make_loader(
        train_set,
        batch_size,
        runtime,
        shuffle=True,
        drop_last=len(train_set) > batch_size,
        generator=generator,
    )
    # Whole large images (e.g. 1500x1500 tiles) validate one at a time.
    val_batch = int(cfg.dataset.get("validation_batch_size") or batch_size)
    val_loader = make_loader(val_set, val_batch, runtime) if val_samples else None
    if trainer.monitor.startswith("val/") and val_loader is None:
        raise UnetError(
            f"trainer.monitor={trainer.monitor} needs a validation split, but "
            "dataset.validation_size is 0; set trainer.monitor=train/loss trainer.monitor_mode=min"
        )

    model = runtime.prepare_model(build_model(cfg.model))
    optimizer = build_optimizer(cfg.optimizer, model.parameters())
    _fill_steps_per_epoch(cfg, len(train_loader))
    scheduler = build_scheduler(cfg.scheduler, optimizer)
    stopper = EarlyStopping(
        trainer.early_stopping.patience,
        trainer.monitor_mode,
        float(trainer.early_stopping.min_delta),
    )
    scaler = runtime.grad_scaler()

    start_epoch, global_step, best_value, best_epoch = 1, 0, None, 0
    if trainer.resume:
        state = load_checkpoint(trainer.resume)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise UnetError(
                f"trainer.resume={trainer.resume} was saved with a different model or optimizer "
                f"config than this run's ({err}). Resume with the same model=/optimizer= choices."
            ) from err
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
            # Keep the schedule's progress but this run's settings (e.g. a cosine
            # T_max that follows a larger trainer.epochs).
            for key, value in cfg.scheduler.factory.items():
                if not key.startswith("_") and hasattr(scheduler, key):
                    setattr(scheduler, key, value)
            if isinstance(scheduler, WarmupCosineLR):  # a closed form: apply the new length now
                for group, lr in zip(optimizer.param_groups, scheduler.get_lr()):
                    group["lr"] = lr
            planned = getattr(scheduler, "total_steps", None)  # onecycle's fixed length
            wanted = int(trainer.epochs) * int(cfg.scheduler.factory.get("steps_per_epoch") or 1)
            if planned is not None and planned < wanted:
                raise UnetError(
                    f"{trainer.resume} was trained with a one-cycle schedule of {planned} steps, "
                    f"which cannot stretch to trainer.epochs={trainer.epochs}; resume with the "
                    "trainer.epochs it was started with, or start a new run"
                )
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch = int(state["epoch"]) + 1
        global_step = int(state.get("global_step", 0))
        best_value, best_epoch = state.get("best_value"), int(state.get("best_epoch", 0))
        if state.get("early_stopping"):
            stopper.load_state_dict(state["early_stopping"])
        if start_epoch > trainer.epochs:
            raise UnetError(
                f"{trainer.resume} has already trained {state['epoch']} epochs; set "
                f"trainer.epochs to more than that to continue"
            )

    config = OmegaConf.to_container(cfg, resolve=True)
    writer = SummaryWriter(str(run_dir / "tensorboard"))
    history = MetricsCSV(run_dir / "metrics.csv")
    ckpt_dir = run_dir / "checkpoints"
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"train: {len(train_samples)} images, validation: {len(val_samples)} images "
        f"({layout.root}); model {n_params / 1e6:.2f} M parameters; {runtime.describe()}"
    )
    margin = int(getattr(model, "output_margin", 0))
    if margin:
        print(
            f"valid convolutions: the output misses {margin} pixels on each side; "
            f"trainer.mirror_context={trainer.mirror_context}"
        )
    print(f"run folder: {run_dir}")

    def log_step(_: int, loss: float) -> None:
        nonlocal global_step
        global_step += 1
        writer.add_scalar("train/loss", loss, global_step)
        if scheduler is not None and cfg.scheduler.interval == "step":
            scheduler.step()

    # Fixed validation images for TensorBoard, spread over the split (so over objects).
    n_examples = min(int(trainer.log_images), len(val_samples))
    examples = (
        frozenset(np.linspace(0, len(val_samples) - 1, n_examples).round().astype(int).tolist())
        if n_examples
        else frozenset()
    )

    metrics: dict[str, float] = {}
    last_epoch = start_epoch - 1
    stopped_early = False
    try:
        for epoch in range(start_epoch, int(trainer.epochs) + 1):
            epoch_start = time.time()
            lr = optimizer.param_groups[0]["lr"]
            result = train_epoch(
                model,
                train_loader,
                loss_fn,
                optimizer,
                runtime,
                scaler,
                on_step=log_step,
                max_steps=trainer.max_steps_per_epoch,
                grad_clip_norm=trainer.grad_clip_norm,
                desc=f"epoch {epoch}/{trainer.epochs}",
                progress=trainer.progress,
                mirror_context=trainer.mirror_context,
            )
            metrics = {"train/loss": result.loss}
            if val_loader is not None:
                scored = score(
                    model,
                    val_loader,
                    runtime,
                    task,
                    loss_fn=loss_fn,
                    example_indices=examples,
                    progress=trainer.progress,
                    mirror_context=trainer.mirror_context,
                )
                metrics.update({f"val/{k}": v for k, v in scored.means().items()})
                if scored.examples:
                    grid = comparison_grid(
                        scored.examples["image"],
                        scored.examples["mask"],
                        scored.examples["pred"],
                        list(cfg.dataset.mean),
                        list(cfg.dataset.std),
                        task,
                    )
                    writer.add_image("val/examples", grid, epoch, dataformats="HWC")
            if trainer.monitor not in metrics:
                raise UnetError(
                    f"trainer.monitor={trainer.monitor} is not a metric of this run; choose one "
                    f"of {', '.join(metrics)}"
                )
            for key, value in metrics.items():
                if key != "train/loss":
                    writer.add_scalar(key, value, epoch)
            writer.add_scalar("train/epoch_loss", result.loss, epoch)
            writer.add_scalar("lr", lr, epoch)
            writer.flush()
            monitored = metrics[trainer.monitor]
            if scheduler is not None and cfg.scheduler.interval == "epoch":
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(monitored)
                else:
                    scheduler.step()
            is_best = _improved(monitored, best_value, trainer.monitor_mode)
            if is_best:
                best_value, best_epoch = monitored, epoch
            stopped_early = stopper.update(monitored)
            history.append(
                {
                    "epoch": epoch,
                    **{k.replace("/", "_"): round(v, 6) for k, v in metrics.items()},
                    "lr": lr,
                    "seconds": round(time.time() - epoch_start, 2),
                }
            )
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "global_step": global_step,
                "metrics": metrics,
                "best_value": best_value,
                "best_epoch": best_epoch,
                "early_stopping": stopper.state_dict(),
                "monitor": trainer.monitor,
                "config": config,
            }
            if is_best:
                save_checkpoint(state, ckpt_dir / "best.pt")
            save_checkpoint(state, ckpt_dir / "last.pt")
            last_epoch = epoch
            print(
                f"epoch {epoch}/{trainer.epochs}  {format_metrics(metrics)}  lr {lr:.2e}"
                f"{'  (best)' if is_best else ''}"
            )
            if stopped_early:
                print(
                    f"early stopping: {trainer.monitor} has not improved for "
                    f"{stopper.bad_epochs} epochs (trainer.early_stopping.patience="
                    f"{stopper.patience})"
                )
                break
    except KeyboardInterrupt:
        writer.close()
        last = ckpt_dir / "last.pt"
        where = f"the last good checkpoint is {last}" if last.is_file() else "no epoch finished"
        raise UnetError(
            f"interrupted during epoch {last_epoch + 1}; {where}. Continue with "
            f"trainer.resume={last}"
        ) from None
    writer.close()

    result = {
        "monitor": trainer.monitor,
        "mode": trainer.monitor_mode,
        "best_value": best_value,
        "best_epoch": best_epoch,
        "epochs": last_epoch,
        "stopped_early": stopped_early,
        "final": metrics,
        "run_dir": str(run_dir),
        "seconds": round(time.time() - started, 1),
    }
    (run_dir / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")
    minutes, seconds = divmod(int(result["seconds"]), 60)
    print_summary(
        "unet train: done",
        [
            ("run folder", str(run_dir)),
            (
                "best epoch",
                f"{best_epoch} of {last_epoch}  ({trainer.monitor} {best_value:.4f})"
                if best_value is not None
                else "none",
            ),
            ("last epoch", format_metrics(metrics)),
            *([("stopped early", f"after epoch {last_epoch}")] if stopped_early else []),
            ("checkpoints", f"{ckpt_dir / 'best.pt'}, {ckpt_dir / 'last.pt'}"),
            ("metrics", str(run_dir / "metrics.csv")),
            ("tensorboard", f"tensorboard --logdir {run_dir / 'tensorboard'}"),
            ("time", f"{minutes}m {seconds:02d}s"),
        ],
    )
    return result


@hydra.main(config_path=config_dir(), config_name="train", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)
