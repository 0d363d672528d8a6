"""EKS Fargate's pod sizes and how it bills them: pure functions the spec model, the CRD's
rules and the Fargate cost model (benchmarks/fargate_model.py) share.

EKS Fargate adds 256 MB to every pod's memory request and bills the smallest Fargate size
(vCPU, memory) that holds the requests; a request that is not exactly a size less those
256 MB is billed as the next size up.
"""

from __future__ import annotations

from typing import Literal, get_args

FargateCpu = Literal["0.25", "0.5", "1", "2", "4", "8", "16"]
FARGATE_CPUS: tuple[str, ...] = get_args(FargateCpu)
# Fargate pod sizes: vCPU -> the memory sizes (MiB) that vCPU comes with.
FARGATE_SIZES_MIB: dict[str, tuple[int, ...]] = {
    "0.25": (512, 1024, 2048),
    "0.5": tuple(range(1024, 4097, 1024)),
    "1": tuple(range(2048, 8193, 1024)),
    "2": tuple(range(4096, 16385, 1024)),
    "4": tuple(range(8192, 30721, 1024)),
    "8": tuple(range(16384, 61441, 4096)),
    "16": tuple(range(32768, 122881, 8192)),
}
# EKS Fargate adds this to the pod's memory request (kubelet, kube-proxy, containerd) and
# then bills the smallest size that holds the sum: a request of 1Gi is billed as 2 GB.
FARGATE_MEMORY_OVERHEAD_MIB = 256
FARGATE_SIZES_HELP = (
    "a Fargate size less the 256Mi Fargate adds to every pod: 0.25 vCPU: 256Mi, 768Mi, "
    "1792Mi; 0.5: 768Mi-3840Mi; 1: 1792Mi-7936Mi; 2: 3840Mi-16128Mi; 4: 7936Mi-30464Mi, "
    "in 1024Mi steps; 8: 16128Mi-61184Mi in 4096Mi steps; 16: 32512Mi-122624Mi in 8192Mi "
    "steps"
)


def memory_mib(memory: str) -> int:
    """A quantity of the form the CRD allows (``<digits>Mi`` or ``<digits>Gi``) in MiB."""
    amount = int(memory[:-2])
    return amount * 1024 if memory.endswith("Gi") else amount


def fargate_billed_size(cpu: str, request_mib: int) -> tuple[str, int] | None:
    """The (vCPU, MiB) size Fargate bills for a pod with these requests, or None when the
    pod fits no size (it never starts). Fargate takes the smallest size whose vCPU and
    memory hold the requests, memory plus FARGATE_MEMORY_OVERHEAD_MIB."""
    needed = request_mib + FARGATE_MEMORY_OVERHEAD_MIB
    for vcpu, sizes in FARGATE_SIZES_MIB.items():
        if float(vcpu) < float(cpu):
            continue
        for size in sizes:
            if size >= needed:
                return vcpu, size
    return None


def describe_size(size: tuple[str, int]) -> str:
    vcpu, mib = size
    return f"{vcpu} vCPU / {mib / 1024:g} GB"


def exact_fargate_requests(cpu: str) -> list[str]:
    """The memory requests that bill exactly ``cpu`` vCPU and one of its memory sizes."""
    return [f"{size - FARGATE_MEMORY_OVERHEAD_MIB}Mi" for size in FARGATE_SIZES_MIB[cpu]]


def fargate_size_allowed(cpu: str, memory: str) -> bool:
    """Whether a pod of these requests is billed as exactly ``cpu`` vCPU and the requested
    memory plus the Fargate overhead, with nothing rounded up."""
    request = memory_mib(memory)
    return fargate_billed_size(cpu, request) == (cpu, request + FARGATE_MEMORY_OVERHEAD_MIB)


def fargate_size_problem(cpu: str, memory: str) -> str | None:
    """Why these requests do not fit a Fargate size exactly (naming what would be billed),
    or None when they do."""
    if fargate_size_allowed(cpu, memory):
        return None
    billed = fargate_billed_size(cpu, memory_mib(memory))
    outcome = (
        "fits no Fargate size, so the pod would never start"
        if billed is None
        else f"is billed as {describe_size(billed)}"
    )
    requests = exact_fargate_requests(cpu)
    choices = ", ".join(requests) if len(requests) <= 4 else f"{requests[0]} to {requests[-1]}"
    return (
        f"job.cpu {cpu} with job.memory {memory} {outcome} (Fargate adds "
        f"{FARGATE_MEMORY_OVERHEAD_MIB}Mi to every pod and rounds up); for {cpu} vCPU "
        f"request one of {choices} ({FARGATE_SIZES_HELP})"
    )
