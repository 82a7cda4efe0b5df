"""The trainer: set-up, one epoch, validation, checkpoints and resume, logging, the summary.

`unet train` builds a `Trainer` from its config and the hardware setting the tuner chose,
and calls `fit()`. Each stage of a run is one method that fits on a screen; the training
step is `unetcli.training.step.TrainingStep` (the one the tuner and the plan time), the
learning-rate policy is `unetcli.training.schedulers.Schedule`, what is written as the run
goes is `RunLog`, and which process writes is `self.processes` (`SingleProcess`, or
`DistributedProcesses` when `unetcli.distributed` runs several).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from unetcli.config.instantiate import build
from unetcli.core.checkpoints import load_checkpoint, save_checkpoint
from unetcli.core.console import format_metrics, progress_bar
from unetcli.core.hardware import Runtime, resolve_hardware
from unetcli.core.memory import reuse_blocks
from unetcli.core.seeding import mix, seed_everything
from unetcli.core.task import Task
from unetcli.distributed.processes import Processes, SingleProcess
from unetcli.errors import UnetError
from unetcli.models.contract import build_model, without_pretrained
from unetcli.models.input_stats import resolve_input_stats
from unetcli.tracking.build import build_trackers
from unetcli.tracking.interface import RunInfo, flatten
from unetcli.tracking.provenance import provenance_tags
from unetcli.training.accumulation import BatchGroups
from unetcli.training.accumulation import describe as describe_accumulation
from unetcli.training.bad_files import BadFiles
from unetcli.training.data import build_training_data
from unetcli.training.early_stopping import EarlyStopping
from unetcli.training.ema import WeightAverage, trained_weights
from unetcli.training.example_grid import comparison_grid
from unetcli.training.fixed_costs import FixedCosts, run_start
from unetcli.training.freezing import EncoderFreeze
from unetcli.training.nonfinite import NonFiniteSteps, handle_bad_step
from unetcli.training.preemption import Preemption
from unetcli.training.profiling import StepProfiler
from unetcli.training.result import print_training_summary, write_result
from unetcli.training.run_log import RunLog
from unetcli.training.schedulers import Schedule
from unetcli.training.step import TrainingStep, build_optimizer
from unetcli.training.time_budget import budget_for
from unetcli.training.validation import score_validation


class Trainer:
    """One training run as `cfg` describes it; `fit()` returns what result.json holds."""

    def __init__(
        self, cfg: DictConfig, processes: Processes | None = None, runtime: Runtime | None = None
    ) -> None:
        """`runtime`: the hardware setting (the tuner's choice); None takes the rule's."""
        if cfg.trainer.monitor_mode not in ("max", "min"):
            raise UnetError(
                f"trainer.monitor_mode must be max or min, got {cfg.trainer.monitor_mode!r}"
            )
        self.cfg = cfg
        self.opts = cfg.trainer
        self.processes = processes or SingleProcess()
        self.run_dir = Path(cfg.paths.run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.started = time.time()
        self.costs = FixedCosts(run_start())
        self.costs.add("start-up", self.started - self.costs.started)  # imports, config, tuner
        self.global_step = 0
        self.start_epoch, self.last_epoch = 1, 0
        self.best_value: float | None = None
        self.best_epoch = 0
        self.runtime = runtime or resolve_hardware(cfg.hardware)
        with self.costs.measure("set-up"):
            self.setup()

    # --- set-up -----------------------------------------------------------------------
    def setup(self) -> None:
        """Build data, model, loss, optimizer and schedule; restore them on resume."""
        cfg = self.cfg
        self.runtime.apply()
        # Seeded here, whatever drew random numbers before (the tuner's candidate steps).
        seed_everything(int(cfg.seed))
        self.task = Task.from_config(cfg.dataset)
        self.loss_fn = build(cfg.loss, "loss", task=self.task)
        resolve_input_stats(cfg)  # a null dataset.mean/std (`unet train` resolved it first)
        with self.processes.main_first():  # e.g. the synthetic set is generated once
            self.data = build_training_data(cfg, self.runtime, self.loss_fn, self.processes)
        for name, seconds in self.data.costs.items():  # the file check, the data cache
            self.costs.add(name, seconds)
        self.batches = BatchGroups(self.data.train_loader, self.opts.accumulate_batches)
        # A resumed run takes every weight from its checkpoint, none from pretrained files.
        model_cfg = without_pretrained(cfg.model) if self.opts.resume else cfg.model
        self.model = self.runtime.prepare_model(build_model(model_cfg))
        self.freeze = EncoderFreeze(self.model, self.opts.freeze_encoder_epochs)
        self.ema = WeightAverage(self.model, self.opts.ema_decay) if self.opts.ema else None
        self.optimizer = build_optimizer(cfg.optimizer, self.model)
        self.schedule = Schedule(cfg, self.optimizer, len(self.batches))
        self.stopper = EarlyStopping(
            self.opts.early_stopping.patience,
            self.opts.monitor_mode,
            float(self.opts.early_stopping.min_delta),
        )
        self.position: dict | None = None  # of a mid-epoch checkpoint being resumed
        self.tracking: dict = {}  # the tracker runs of the run resumed (state["tracking"])
        self.log: RunLog | None = None
        self.budget_spent = 0.0  # of trainer.time_budget, by the run resumed
        self.bad_files = BadFiles(cfg.dataset.on_bad_file, self.ckpt_dir)
        self.nonfinite = NonFiniteSteps(self.opts.max_bad_steps, self.opts.bad_steps_lr_factor)
        self.step = TrainingStep(
            self.model, self.optimizer, self.loss_fn, self.runtime, self.opts.mirror_context,
            self.opts.grad_clip_norm, self.processes,
        )  # fmt: skip
        self.scaler = self.step.scaler
        if self.opts.resume:
            self.resume(str(self.opts.resume))
        # After resuming: DistributedDataParallel starts every process from rank 0's weights.
        self.step.net = self.processes.wrap(self.model)
        self.budget = budget_for(self)
        # Resolved after steps_per_epoch was filled in, so the checkpoint holds it.
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def resume(self, path: str) -> None:
        """Continue from a checkpoint: weights, optimizer, schedule, scaler, counters."""
        state = load_checkpoint(path)
        try:
            self.model.load_state_dict(trained_weights(state))
            self.optimizer.load_state_dict(state["optimizer"])
            if self.ema is not None:
                self.ema.load(state)
        except (RuntimeError, ValueError, KeyError) as err:
            raise UnetError(
                f"trainer.resume={path} was saved with a different model or optimizer config "
                f"than this run's ({err}). Resume with the same model=/optimizer= choices."
            ) from err
        if self.opts.time_budget:  # the budget sets the length again once it has measured
            self.budget_spent = float(state.get("budget_spent") or 0.0)
            self.opts.epochs = self.schedule.epochs = max(int(self.opts.epochs), state["epoch"] + 1)
        self.schedule.load_state_dict(state.get("scheduler"), path)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if state.get("early_stopping"):
            self.stopper.load_state_dict(state["early_stopping"])
        self.start_epoch = int(state["epoch"]) + 1
        self.position = state.get("position")
        self.last_epoch = int(state["epoch"])
        self.global_step = int(state.get("global_step", 0))
        self.best_value, self.best_epoch = state.get("best_value"), int(state.get("best_epoch", 0))
        self.tracking = state.get("tracking") or {}
        if self.start_epoch > int(self.opts.epochs):
            raise UnetError(
                f"{path} has already trained {state['epoch']} epochs; set trainer.epochs to "
                "more than that to continue"
            )

    # --- the run ----------------------------------------------------------------------
    def fit(self) -> dict:
        """Train every epoch (or until early stopping); returns the run's result."""
        self.announce()
        # Set up (the file check's and cache build's threads) with large blocks mapped
        # and unmapped; the steps' activations are then kept and reused.
        reuse_blocks()
        with self.open_log() as self.log, Preemption(self.opts.checkpoint_every) as self.preemption:
            self.log.text("hardware", self.runtime.describe())  # hardware.json says the same
            try:
                metrics, stopped_early = self.run_epochs()
            except KeyboardInterrupt:
                raise self.interrupted() from None
            result = {
                "monitor": self.opts.monitor,
                "mode": self.opts.monitor_mode,
                "best_value": self.best_value,
                "best_epoch": self.best_epoch,
                "epochs": self.last_epoch,
                "stopped_early": stopped_early,
                "final": metrics,
                "run_dir": str(self.run_dir),
                "seconds": round(time.time() - self.started, 1),
                **self.nonfinite.summary(),
                "skipped_files": self.bad_files.skipped,
            }
            if self.processes.is_main:
                with self.costs.measure("summary"):
                    write_result(self.run_dir, result)
                    files = [self.ckpt_dir / "best.pt", self.run_dir / "metrics.csv"]
                    self.log.artifacts([*files, self.run_dir / "result.json"], "")
                    print_training_summary(result, self.ckpt_dir)
                print(self.costs.line())
        return result

    def run_epochs(self) -> tuple[dict[str, float], bool]:
        """Every epoch from the first (or resumed) one; (last metrics, stopped early)."""
        metrics: dict[str, float] = {}
        epoch = self.start_epoch
        while epoch <= int(self.opts.epochs):  # a time budget may change it
            metrics, stopped_early = self.run_epoch(epoch)
            if stopped_early:
                return metrics, True
            epoch += 1
        return metrics, False

    def open_log(self) -> RunLog:
        """The run's loggers (main process only), told the config, hardware and provenance.

        A resumed run continues its tracker runs (their ids are in the checkpoint); a job
        of a sweep names its sweep folder as its group.
        """
        is_main = self.processes.is_main
        info = RunInfo(self.run_dir, self.run_dir.name, self.cfg.tracking.group, self.tracking)
        trackers = build_trackers(self.cfg.logger) if is_main else []
        log = RunLog(self.run_dir, is_main, trackers, info)
        if is_main:
            choice = {"hardware.choice": self.runtime.describe()}
            log.params({**flatten(self.config), **choice}, provenance_tags())
        return log

    def run_epoch(self, epoch: int) -> tuple[dict[str, float], bool]:
        """Train, validate, log, keep checkpoints; returns (metrics, stop now)."""
        epoch_start = time.time()
        lr = self.optimizer.param_groups[0]["lr"]
        metrics = {"train/loss": self.train_epoch(epoch)}
        with self.costs.measure("validation"):
            metrics.update(self.validate(epoch))
        # Every process takes the main one's figures: decisions below are made once.
        metrics = self.processes.from_main(metrics)
        unmonitored = not self.data.val_samples and self.opts.monitor.startswith("val/")
        if self.opts.monitor not in metrics and not unmonitored:
            raise UnetError(
                f"trainer.monitor={self.opts.monitor} is not a metric of this run; choose one "
                f"of {', '.join(metrics)}"
            )
        self.log.epoch(epoch, metrics, lr, time.time() - epoch_start)
        is_best, stop = self.track(metrics.get(self.opts.monitor), epoch)
        if self.budget:
            self.budget.after_epoch(self, epoch, time.time() - epoch_start)
        with self.costs.measure("checkpoints"):
            self.save(epoch, metrics, is_best)
        if self.budget:  # what the next epochs' writes will take
            self.budget.tail = self.costs.last
        self.last_epoch = epoch
        self.report_epoch(epoch, metrics, lr, is_best, stop)
        return metrics, stop

    def track(self, monitored: float | None, epoch: int) -> tuple[bool, bool]:
        """(a new best, stop early now) after the epoch's monitored value.

        None: a run without validation (dataset.fold=all) watching a val/ metric. It keeps
        last.pt only; build_training_data refused early stopping and plateau for it.
        """
        self.schedule.after_epoch(monitored)
        if monitored is None:
            return False, False
        is_best = self.improved(monitored)
        if is_best:
            self.best_value, self.best_epoch = monitored, epoch
        return is_best, self.stopper.update(monitored)

    def improved(self, value: float) -> bool:
        best = self.best_value
        return best is None or (value > best if self.opts.monitor_mode == "max" else value < best)

    # --- one epoch of training --------------------------------------------------------
    def train_epoch(self, epoch: int) -> float:
        """One pass over the training data; returns the mean training loss."""
        self.model.train()
        if self.freeze.apply(epoch):  # the encoder's parameters stopped (or started) learning
            self.step.trainable(self.processes.wrap(self.model))
        total, steps = self.begin_epoch(epoch)
        cap = self.opts.max_steps_per_epoch
        shown = self.opts.progress and self.processes.is_main
        desc = f"epoch {epoch}/{self.opts.epochs}" if shown else None
        bar = progress_bar(self.batches, desc=desc, unit="step", leave=False)
        with StepProfiler(
            self.opts.profile_steps if epoch == self.start_epoch else 0,
            self.run_dir,
            self.processes.is_main,
        ) as profiler:
            for group in bar:
                batch = [b for b in map(self.bad_files.filter, group) if b is not None]
                if not batch:  # dataset.on_bad_file=skip left nothing of it
                    continue
                loss = self.train_step(batch, steps + 1)
                if loss is None:  # a non-finite step, skipped (unetcli.training.nonfinite)
                    continue
                steps += 1
                total += loss
                self.global_step += 1
                self.log.step(loss, self.global_step)
                self.schedule.after_step()
                self.preemption.after_step(partial(self.save_position, epoch, steps, total))
                if self.budget:
                    self.budget.after_step(self, epoch, steps)
                profiler.step()
                bar.set_postfix(loss=f"{total / steps:.4f}")
                if (cap and steps >= cap) or (self.budget and self.budget.cut_epoch()):
                    break
        bar.close()
        return self.processes.mean(total, steps)

    def begin_epoch(self, epoch: int) -> tuple[float, int]:
        """Seed the epoch; in a mid-epoch checkpoint's epoch, continue at its next batch.

        The epoch depends on (seed, epoch) only, so a resumed run equals an
        uninterrupted one. Returns the (loss sum, steps) done so far.
        """
        ranked = [self.processes.rank] if self.processes.rank else []  # rank 0 seeds as one process
        torch.manual_seed(mix(int(self.cfg.seed), epoch, *ranked))
        at = self.position if self.position and self.position["epoch"] == epoch else None
        self.position = None
        steps = int(at["step"]) if at else 0
        per_step = int(self.opts.batch_size) * self.processes.world_size * self.batches.count
        self.data.sampler.set_epoch(epoch, skip=steps * per_step)
        if at:
            torch.set_rng_state(at["rng"])
        return (float(at["loss_sum"]) if at else 0.0), steps

    def train_step(self, batch: list[dict], step: int) -> float | None:
        """One optimizer step on a group of batches (one, unless trainer.accumulate_batches);
        returns its loss (None: skipped, not finite)."""
        result = self.step(batch)
        if result.skipped:  # fp16's scaler backed off: no step taken, the schedule waits
            self.nonfinite.scaler_skipped += 1
            return None
        if result.bad:
            return handle_bad_step(self, result.batch, result.images, result.bad)
        self.nonfinite.good()
        if self.ema is not None:
            self.ema.update(self.model)
        return result.loss

    # --- validation -------------------------------------------------------------------
    def validate(self, epoch: int) -> dict[str, float]:
        """val/* metrics (per image, then averaged), and the example grid for TensorBoard."""
        if self.data.val_loader is None:
            return {}
        scored = score_validation(self, self.ema.module if self.ema is not None else self.model)
        if scored.examples:
            ex = scored.examples
            grid = comparison_grid(
                ex["image"],
                ex["mask"],
                ex["pred"],
                list(self.cfg.dataset.mean),
                list(self.cfg.dataset.std),
                self.task,
            )
            self.log.image("val/examples", grid, epoch)
        return {f"val/{k}": v for k, v in scored.means().items()}

    # --- checkpoints and messages -----------------------------------------------------
    def save(self, epoch: int, metrics: dict[str, float], is_best: bool) -> None:
        """last.pt every epoch, best.pt when the monitored metric improved (main process)."""
        if not self.processes.is_main:
            return
        state = self.checkpoint_state(epoch, metrics)
        # One serialisation: best.pt is the same file as last.pt (see save_checkpoint).
        best = [self.ckpt_dir / "best.pt"] if is_best else []
        save_checkpoint(state, self.ckpt_dir / "last.pt", *best)

    def save_position(self, epoch: int, steps: int, loss_sum: float) -> str:
        """last.pt in the middle of `epoch` (preemption, trainer.checkpoint_every)."""
        path = self.ckpt_dir / "last.pt"
        if self.processes.is_main:
            state = self.checkpoint_state(epoch - 1, {})
            state["position"] = {
                "epoch": epoch,
                "step": steps,
                "loss_sum": loss_sum,
                "rng": torch.get_rng_state(),
            }
            save_checkpoint(state, path)
        return str(path)

    def checkpoint_state(self, epoch: int, metrics: dict[str, float]) -> dict:
        """What a checkpoint holds after `epoch` finished epochs."""
        weights = {"model": self.model.state_dict()}
        if self.ema is not None:  # "model": the average; "ema": the trained weights
            weights = self.ema.checkpoint(self.model)
        return {
            **weights,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "global_step": self.global_step,
            "metrics": metrics,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "early_stopping": self.stopper.state_dict(),
            "budget_spent": self.budget.spent() if self.budget else None,
            "monitor": self.opts.monitor,
            "config": self.config,
            # Plain data (ids and settings): a resumed run, evaluate and predict find the
            # tracker runs again.
            "tracking": self.log.record() if self.log is not None else {},
        }

    def announce(self) -> None:
        """The start lines: data, model, hardware, valid-convolution margin, run folder."""
        if not self.processes.is_main:
            return
        data = self.data
        n_params = sum(p.numel() for p in self.model.parameters())
        print(
            f"train: {len(data.train_samples)} images, validation: {len(data.val_samples)} "
            f"images ({data.layout.root}); task {self.task.kind}; model {n_params / 1e6:.2f} M "
            f"parameters; {self.runtime.describe()}"
        )
        if self.model.output_margin:
            print(
                f"valid convolutions: the output misses {self.model.output_margin} pixels on "
                f"each side; trainer.mirror_context={self.opts.mirror_context}"
            )
        if self.opts.overfit_batches:
            print(
                f"debug: overfitting {len(data.val_samples)} images, each epoch "
                f"{self.opts.overfit_repeats} times over them (trainer.overfit_batches="
                f"{self.opts.overfit_batches}), no augmentation"
            )
        batch = int(self.opts.batch_size)
        for line in (
            describe_accumulation(self.batches.count, batch, self.processes.world_size),
            self.freeze.describe(),
            f"weights averaged (EMA, decay {self.ema.decay:g}): validation and checkpoints use "
            "the average" if self.ema is not None else None,
        ):
            if line:
                print(line)
        print(f"{self.processes.describe(batch)}; run folder: {self.run_dir}")

    def report_epoch(
        self, epoch: int, metrics: dict[str, float], lr: float, is_best: bool, stop: bool
    ) -> None:
        if not self.processes.is_main:
            return
        best = "  (best)" if is_best else ""
        print(f"epoch {epoch}/{self.opts.epochs}  {format_metrics(metrics)}  lr {lr:.2e}{best}")
        if stop:
            print(
                f"early stopping: {self.opts.monitor} has not improved for "
                f"{self.stopper.bad_epochs} epochs (trainer.early_stopping.patience="
                f"{self.stopper.patience})"
            )

    def interrupted(self) -> UnetError:
        last = self.ckpt_dir / "last.pt"
        where = f"the last good checkpoint is {last}" if last.is_file() else "no epoch finished"
        return UnetError(
            f"interrupted during epoch {self.last_epoch + 1}; {where}. Continue with "
            f"trainer.resume={last}"
        )
