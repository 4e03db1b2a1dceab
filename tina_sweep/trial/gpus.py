"""Whether this machine has a GPU torch can use, without importing torch (seconds) where the answer is plainly
no: the CLI and the worker ask before any trial starts, and on a CPU machine nothing else in their process
needs torch."""

from __future__ import annotations

import glob

# the device nodes a GPU torch can use shows up as: NVIDIA (/dev/nvidia0, ...), ROCm (/dev/kfd), WSL 2 (/dev/dxg)
GPU_DEVICE_NODES = ("/dev/nvidia[0-9]*", "/dev/kfd", "/dev/dxg")


def gpu_device_nodes() -> list[str]:
    """The GPU device nodes of this machine (none: no GPU torch could use)."""
    return [node for pattern in GPU_DEVICE_NODES for node in glob.glob(pattern)]


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, answered without importing torch on a machine without GPU device nodes."""
    if not gpu_device_nodes():
        return False
    import torch

    return torch.cuda.is_available()


def cuda_device_count() -> int:
    """``torch.cuda.device_count()``, answered without importing torch on a machine without GPU device nodes."""
    if not gpu_device_nodes():
        return 0
    import torch

    return torch.cuda.device_count()
