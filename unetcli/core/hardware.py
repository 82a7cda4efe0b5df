"""Turning the `hardware` config group into a device, a precision and loader settings.

`resolve_hardware` is the rule without measuring (`hardware.tune=false`, and
the starting point of the tuner in `unetcli.tuning`): CUDA when present (bf16
autocast where the GPU supports it, else fp16 with a grad scaler), else the CPU
with bf16 autocast and channels-last memory where the CPU has bf16 units. No CPU
flag predicts which setting is fastest (bf16 is 2.6x fp32 on an AMD EPYC and
slower than fp32 channels-last on an Intel Xeon without AMX), so `hardware=auto`
measures by default; the tuner returns a `Runtime` that also says why.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from unetcli.core.cpus import thread_count, usable_cores
from unetcli.errors import UnetError


def cpu_has_bf16() -> bool:
    """True if the CPU computes bf16 natively (oneDNN's own check, then /proc/cpuinfo)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        try:
            with open("/proc/cpuinfo") as f:
                flags = f.read()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


def sync(device: torch.device) -> None:
    """Wait until `device` has finished the work queued on it.

    CUDA runs kernels asynchronously: a clock read before this wait times only the
    queueing, and the unfinished work lands in whatever is timed next. Every timing
    of device work reads the clock after this one function (the tuner's measure, the
    plan's trials), so a test can count or stand in for it.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def host_values(*tensors: torch.Tensor) -> list[float]:
    """The values of one-element tensors on the host, read with a single wait for the device.

    Every host read of a device tensor (`.item()`, `bool()`, `float()`) waits for the
    device; a training step reads its loss and gradient norm here, together, once.
    """
    return torch.stack([t.detach().float().reshape(()) for t in tensors]).tolist()


def bf16_supported(device: torch.device) -> bool:
    """bf16 computed natively: a CUDA GPU without emulation (V100 and T4 emulate it and
    report True to the plain check), or a CPU with bf16 units."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return cpu_has_bf16()


def on_device(tensor: torch.Tensor, device: torch.device) -> bool:
    """Whether `tensor` lives on `device`; "cuda" means the current CUDA device (a tensor
    reports "cuda:0", which compares unequal to "cuda")."""
    if tensor.device.type != device.type:
        return False
    if device.index is None and device.type == "cuda":
        return tensor.device.index == torch.cuda.current_device()
    return device.index is None or tensor.device.index == device.index


@dataclass(frozen=True)
class Runtime:
    """Where and how tensors are computed for one run."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    num_workers: int
    pin_memory: bool
    #: torch intra-op threads of the main process (None: torch's own default).
    threads: int | None = None
    #: CUDA: TensorFloat-32 matmuls and convolutions for fp32 work.
    tf32: bool = False
    #: torch.compile the model (`nn.Module.compile`, so state_dict keys stay the same).
    compile: bool = False
    #: Why this setting: what was measured, forced, cached or ruled.
    reason: str = ""

    @property
    def precision(self) -> str:
        if self.amp_dtype is None:
            return "tf32" if self.tf32 else "fp32"
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]

    def apply(self) -> None:
        """Set the process-wide knobs this runtime needs: threads, TF32, cuDNN autotuning."""
        if self.threads:
            torch.set_num_threads(self.threads)
        _set_cuda_flags(self.cuda_flags())

    def cuda_flags(self) -> dict[str, bool]:
        """The process-wide CUDA flags this runtime computes with ({} off CUDA).

        "fp32" must turn TF32 off (torch's default leaves it on for cuDNN), or fp32
        and tf32 are the same computation. cuDNN autotuning pays off only where the
        input shapes repeat; `varying_shapes()` turns it off where they do not.
        """
        if self.device.type != "cuda":
            return {}
        return {"matmul_tf32": self.tf32, "cudnn_tf32": self.tf32, "cudnn_benchmark": True}

    def flags(self) -> contextlib.AbstractContextManager:
        """This runtime's CUDA flags in force within the block, the previous ones after it:
        the tuner times each candidate under its own flags, as the run will compute."""
        return _cuda_flags_within(self.cuda_flags())

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that is only active for fp16 (bf16 has fp32's range and needs none)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """`images` on this device, in its memory format; the same tensor, untouched, if it
        already is: prediction uploads a batch once and every TTA view and ensemble member
        passes it here again at no cost."""
        if not on_device(images, self.device):
            images = images.to(self.device, non_blocking=self.pin_memory)
        if self.channels_last and not images.is_contiguous(memory_format=torch.channels_last):
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.compile:
            model.compile()
        return model

    def describe(self) -> str:
        layout = " channels-last" if self.channels_last else ""
        compiled = " compiled" if self.compile else ""
        why = f" ({self.reason})" if self.reason else ""
        threads = f", {self.threads} torch threads" if self.threads else ""
        return (
            f"{self.device.type} {self.precision}{layout}{compiled}{why}, "
            f"{self.num_workers} loader workers{threads}"
        )


def varying_shapes() -> contextlib.AbstractContextManager:
    """cuDNN autotuning off within the block: inputs whose shape changes image by image
    (whole-image validation, `predict.mode=full` on mixed sizes) would autotune each new
    shape again instead of reusing a plan."""
    if not torch.backends.cudnn.benchmark:
        return contextlib.nullcontext()
    return _cuda_flags_within({"cudnn_benchmark": False})


@contextlib.contextmanager
def _cuda_flags_within(flags: dict[str, bool]) -> Iterator[None]:
    previous = _set_cuda_flags(flags)
    try:
        yield
    finally:
        _set_cuda_flags(previous)


def _set_cuda_flags(flags: dict[str, bool]) -> dict[str, bool]:
    """Set the named flags; returns their previous values (to restore them)."""
    knobs = {
        "matmul_tf32": (torch.backends.cuda.matmul, "allow_tf32"),
        "cudnn_tf32": (torch.backends.cudnn, "allow_tf32"),
        "cudnn_benchmark": (torch.backends.cudnn, "benchmark"),
    }
    previous = {}
    for name, value in flags.items():
        owner, attribute = knobs[name]
        previous[name] = bool(getattr(owner, attribute))
        setattr(owner, attribute, value)
    return previous


def _flag(value: object, default: bool, key: str) -> bool:
    if value == "auto":
        return default
    if isinstance(value, bool):
        return value
    raise UnetError(f"hardware.{key} must be auto, true or false, got {value!r}")


def rule_workers(cores: int, on_cuda: bool) -> int:
    """Loader workers when nothing was measured: cores - 1 (on a CPU at most 4), none on a
    2-core CPU run.

    A worker helps only with a core of its own. On the CPU the model computes on
    every core, so on 2 cores a worker takes half of them while it runs: there,
    loading between steps in the main process measured 12-14% faster in two thread
    trials and 1.5% slower in a third (unet_small, 96x128, AMD EPYC; docs/benchmarks.md,
    "The hardware tuner"). With CUDA the main process mostly waits for the GPU and every
    other core loads: 4 workers decoding Carvana JPEG+GIF at about 34 samples/s per
    core cannot feed a GPU that trains hundreds of images a second.
    """
    if on_cuda:
        return max(0, cores - 1)
    if cores <= 2:
        return 0
    return min(4, max(0, cores - 1))


def resolve_hardware(cfg: DictConfig) -> Runtime:
    """Resolve every `auto` in the hardware config for this machine."""
    requested = str(cfg.get("device", "auto"))
    if requested == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UnetError(
                "hardware.device=cuda but this machine has no usable CUDA device (or torch is "
                "a CPU build). Use hardware=auto or hardware=cpu."
            )
        device = torch.device(requested)
    elif requested == "cpu":
        device = torch.device("cpu")
    else:
        raise UnetError(f"hardware.device must be auto, cpu or cuda, got {requested!r}")

    on_cuda = device.type == "cuda"
    bf16_ok = bf16_supported(device)
    precision = str(cfg.get("precision", "auto"))
    if precision == "auto":
        precision = "bf16" if bf16_ok else ("fp16" if on_cuda else "fp32")
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise UnetError(f"hardware.precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    if precision == "fp16" and not on_cuda:
        raise UnetError("hardware.precision=fp16 needs a CUDA device; on a CPU use bf16 or fp32")

    channels_last = _flag(cfg.get("channels_last", "auto"), on_cuda or bf16_ok, "channels_last")
    workers = cfg.get("num_workers", "auto")
    if workers == "auto":
        workers = rule_workers(usable_cores(), on_cuda)
    pin_memory = _flag(cfg.get("pin_memory", "auto"), on_cuda, "pin_memory")
    threads = thread_count(cfg.get("threads", "auto"), "hardware.threads")
    return Runtime(device, dtypes[precision], channels_last, int(workers), pin_memory, threads)


def release_memory(device: torch.device) -> None:
    """Return the cached blocks of models and optimizer states no longer referenced to the
    GPU, so the next candidate (or plan trial) is measured with the memory it will have."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
