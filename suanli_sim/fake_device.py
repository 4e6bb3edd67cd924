"""One fake GPU: identity, and every time-dependent value NVML reports, with faults applied.

Values are in NVML's units (MHz, C, mW, mJ, ns, KB/s, KiB). A method raises `pynvml.NVMLError`
where real NVML answers with an error for this model or state (e.g. NOT_SUPPORTED).
"""

from __future__ import annotations

from typing import Any, NoReturn

from suanli_sim.binding import pynvml
from suanli_sim.fake_faults import Fault
from suanli_sim.fake_mig import MAX_MIG_DEVICES
from suanli_sim.fake_mig_device import gpu_activity, mig_devices, uuid_from
from suanli_sim.fake_models import MODELS, Clocks
from suanli_sim.fake_processes import FakeProcess, UnitProcesses, scenario_processes
from suanli_sim.fake_scenario import GpuSpec, Scenario
from suanli_sim.fake_workload import TICK, Tick, Windows, Workload, mix, unit

P = pynvml
ENCODER_SAMPLING_US = 167_000  # samplingPeriodUs; not in the captures (a typical NVML value)
THERMAL_BITS_HW = (
    P.nvmlClocksEventReasonHwSlowdown
    | P.nvmlClocksEventReasonHwThermalSlowdown
    | P.nvmlClocksEventReasonSwThermalSlowdown
)
_GPU_FAULTS = (
    "gpu_lost",
    "ecc",
    "row_remap_pending",
    "row_remap_failure",
    "pcie_degraded",
    "thermal",
    "nvlink_down",
    "recovery_action",
    "xid",
    "events_unsupported",
    "fabric_incomplete",
)


def fail(code: int) -> NoReturn:
    """Raise what pynvml raises for an NVML return code (the NVMLError_* subclass)."""
    raise P.NVMLError(code)


class FakeGpu:
    """The state of GPU `index` of a scenario."""

    def __init__(self, scenario: Scenario, index: int, spec: GpuSpec) -> None:
        self.index = index
        self.spec = spec
        self.model = model = MODELS[spec.model]
        self.ecc = model.ecc if spec.ecc is None else spec.ecc
        self.limit_w = spec.power_limit_w or model.power_w[0]
        self.driver_major = int(scenario.driver_version.split(".")[0])
        self.faults = {
            k: [f for f in scenario.faults_of(k) if f.applies(index)] for k in _GPU_FAULTS
        }
        h = mix(scenario.seed, index, 0x55)
        self.uuid = uuid_from(h, "GPU")
        self.serial = f"1654{mix(h, 3) % 10**9:09d}"
        self.domain, slot = divmod(index, len(model.bus_ids))
        self.bus = model.bus_ids[slot]
        self.energy_base_mj = int(unit(scenario.seed, index, 40) * 5e9)
        self.replay_base = 0 if unit(scenario.seed, index, 41) < 0.6 else mix(h, 4) % 16
        mine = [p for p in scenario_processes(scenario) if p.gpu == index]
        self.jobs = UnitProcesses(scenario.seed, [p for p in mine if p.mig is None])
        windows = Windows(
            tuple((f.at, f.until) for f in self.faults["thermal"]),
            tuple((f.at, f.until) for f in self.faults["pcie_degraded"]),
            self.jobs.busy_windows(),
        )
        self.work = Workload(
            spec.workload, model, scenario.seed, index, self.limit_w, bool(spec.mig), windows
        )
        units = [
            UnitProcesses(scenario.seed, [p for p in mine if p.mig == i])
            for i in range(MAX_MIG_DEVICES)
        ]
        self.mig = mig_devices(scenario.seed, index, spec, model, self.limit_w, units)
        self.activity = gpu_activity(scenario.seed, index, self.work, self.mig)

    # --- state at time t ------------------------------------------------------------------
    def active(self, kind: str, t: float) -> Fault | None:
        found = [f for f in self.faults[kind] if f.active(t)]
        return found[-1] if found else None

    def started(self, kind: str, t: float) -> list[Fault]:
        return [f for f in self.faults[kind] if f.at <= t]

    def tick(self, t: float) -> Tick:
        return self.work.tick(int(t // TICK))

    def busy(self, t: float) -> bool:
        return self.tick(t).util > 0

    def memory_used_mib(self, t: float) -> int:
        """In MIG mode, what its instances use; else what its workload (or its jobs) use."""
        if self.mig:
            return sum(d.memory_used_mib(t) for d in self.mig)
        if self.jobs.driven:
            usable = self.work.usable_mib
            return self.jobs.used_mib(t, self._job_mib(t), self.work.idle_used_mib(), usable)
        return self.tick(t).mem_used_mib

    def _job_mib(self, t: float) -> int:
        return int(self.work.memory_share(int(t // TICK)) * self.work.usable_mib)

    def processes(self, t: float) -> list[tuple[FakeProcess, int | None, int | None]]:
        """Processes running at t: (process, MiB or None, GPU instance id or None)."""
        out: list[tuple[FakeProcess, int | None, int | None]] = [
            (p, mib, None) for p, mib in self.jobs.memory(t, self._job_mib(t))
        ]
        for device in self.mig:
            out += [(p, mib, device.gpu_instance) for p, mib in device.process_memory(t)]
        return out

    def pci_info(self) -> Any:
        info = P.nvmlPciInfo_t()
        info.busIdLegacy = f"{self.domain:04X}:{self.bus:02X}:00.0".encode()
        info.busId = f"{self.domain:08X}:{self.bus:02X}:00.0".encode()
        info.domain, info.bus, info.device = self.domain, self.bus, 0
        info.pciDeviceId, info.pciSubSystemId = (
            self.model.pci_device_id,
            self.model.pci_subsystem_id,
        )
        return info

    def clock(self, t: float, kind: int, maximum: bool) -> int:
        names = {
            P.NVML_CLOCK_GRAPHICS: "graphics",
            P.NVML_CLOCK_SM: "sm",
            P.NVML_CLOCK_MEM: "memory",
            P.NVML_CLOCK_VIDEO: "video",
        }
        if kind not in names:
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        clocks: Clocks = (
            self.model.max_clocks
            if maximum
            else (self.model.busy_clocks if self.busy(t) else self.model.idle_clocks)
        )
        mhz: int = getattr(clocks, names[kind])
        if not maximum and kind in (P.NVML_CLOCK_GRAPHICS, P.NVML_CLOCK_SM) and self.busy(t):
            if self.active("thermal", t):
                mhz = mhz * 6 // 10
            elif self.tick(t).capped:
                mhz -= 15 * (5 + mix(int(t // TICK), self.index) % 10)  # 75..210 MHz lower
        return mhz

    def temperature(self, t: float) -> int:
        thermal = self.active("thermal", t)
        if thermal:
            th = self.model.thresholds
            default = th.slowdown + 1 if thermal.hw else th.gpu_max + 1
            return int(thermal.temperature if thermal.temperature is not None else default)
        return self.work.temperature(int(t // TICK), memory=False)

    def memory_temperature(self, t: float) -> int:
        if not self.model.memory_temp:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        return self.work.temperature(int(t // TICK), memory=True)

    def threshold(self, kind: int) -> int:
        th = self.model.thresholds
        value = {
            P.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: th.shutdown,
            P.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: th.slowdown,
            P.NVML_TEMPERATURE_THRESHOLD_GPU_MAX: th.gpu_max,
            P.NVML_TEMPERATURE_THRESHOLD_MEM_MAX: th.memory_max,
        }.get(kind)
        if value is None:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        return value

    def fan(self, t: float) -> int:
        if not self.model.fan:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        temp = self.temperature(t)  # 0 % when cool, as captured; the curve above 50 C is assumed
        return 0 if temp < 50 else min(100, 30 + 2 * (temp - 50))

    def reasons(self, t: float) -> int:
        mask = 0
        if not self.busy(t):
            mask |= P.nvmlClocksEventReasonGpuIdle
        if self.tick(t).capped:
            mask |= P.nvmlClocksEventReasonSwPowerCap
        thermal = self.active("thermal", t)
        if thermal:
            mask |= THERMAL_BITS_HW if thermal.hw else P.nvmlClocksEventReasonSwThermalSlowdown
        return mask

    def violation_ns(self, t: float, policy: int) -> int:
        if not 0 <= policy < P.NVML_PERF_POLICY_COUNT:
            fail(P.NVML_ERROR_INVALID_ARGUMENT)
        if policy == P.NVML_PERF_POLICY_POWER:
            return int(self.work.totals(t)[1])
        if policy == P.NVML_PERF_POLICY_THERMAL:
            spans = (
                min(t, f.until if f.until is not None else t) - f.at
                for f in self.started("thermal", t)
            )
            return int(1e9 * sum(max(0.0, s) for s in spans))
        return 0

    def pcie_link(self, t: float, width: bool) -> int:
        gen_max, width_max, idle_gen = self.model.pcie
        value = width_max if width else (gen_max if self.busy(t) else idle_gen)
        degraded = self.active("pcie_degraded", t)
        if degraded:
            limit = (
                (degraded.width or width_max // 2) if width else (degraded.generation or gen_max)
            )
            value = min(value, limit)
        return value

    def pcie_replays(self, t: float) -> int:
        return self.replay_base + int(self.work.totals(t)[3])

    def energy_mj(self, t: float) -> int:
        return self.energy_base_mj + int(self.work.totals(t)[0])

    def ecc_errors(self, t: float, error_type: int) -> int:
        if not self.ecc:
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        faults = self.started("ecc", t)
        if error_type == P.NVML_MEMORY_ERROR_TYPE_CORRECTED:
            return int(self.work.totals(t)[4]) + sum(f.corrected for f in faults)
        if error_type == P.NVML_MEMORY_ERROR_TYPE_UNCORRECTED:
            return sum(f.uncorrected for f in faults)
        fail(P.NVML_ERROR_INVALID_ARGUMENT)

    def remapped_rows(self, t: float) -> tuple[int, int, int, int]:
        if self.spec.mig:  # "Remapped Rows: N/A" in the MIG captures
            fail(P.NVML_ERROR_NOT_SUPPORTED)
        pending, failed = self.started("row_remap_pending", t), self.started("row_remap_failure", t)
        return (
            0,
            len(pending) + len(failed),
            int(self.active("row_remap_pending", t) is not None),
            int(bool(failed)),
        )

    def recovery_action(self, t: float) -> int:
        fault = self.active("recovery_action", t)
        return fault.action if fault else P.NVML_GPU_RECOVERY_ACTION_NONE

    def fabric(self, t: float) -> tuple[int, int]:
        """(state, status) of nvmlDeviceGetGpuFabricInfo. HGX boards (NVLink to NVSwitches)
        answer Completed/Success with clique 0 and a zero cluster UUID, as the H100 and H200
        SXM captures show; boards without a fabric answer state NOT_SUPPORTED (what the call
        returned on a real single H200 in a VM, ../shared/reference/h200/README.md)."""
        if self.model.nvlink_links == 0:
            return int(P.NVML_GPU_FABRIC_STATE_NOT_SUPPORTED), int(P.NVML_SUCCESS)
        if self.active("fabric_incomplete", t):
            return int(P.NVML_GPU_FABRIC_STATE_IN_PROGRESS), int(P.NVML_ERROR_NOT_READY)
        return int(P.NVML_GPU_FABRIC_STATE_COMPLETED), int(P.NVML_SUCCESS)

    # --- NVLink ---------------------------------------------------------------------------
    def check_nvlink(self, link: int | None = None) -> None:
        if self.model.nvlink_links == 0 or self.spec.mig:  # MIG: "Nvlink queries are not
            fail(P.NVML_ERROR_NOT_SUPPORTED)  # supported for Devices in MIG mode"
        if link is not None and not 0 <= link < self.model.nvlink_links:
            fail(P.NVML_ERROR_INVALID_ARGUMENT)

    def link_down_since(self, t: float, link: int) -> float | None:
        downs = [
            f.at
            for f in self.faults["nvlink_down"]
            if f.active(t) and (not f.links or link in f.links)
        ]
        return min(downs) if downs else None

    def nvlink_state(self, t: float, link: int) -> int:
        self.check_nvlink(link)
        down = self.link_down_since(t, link) is not None
        return int(P.NVML_FEATURE_DISABLED if down else P.NVML_FEATURE_ENABLED)

    def nvlink_kib(self, t: float, link: int, rx: bool) -> int:
        self.check_nvlink(link)
        down = self.link_down_since(t, link)
        until = t if down is None else min(t, down)
        weight = 0.95 + 0.1 * unit(self.index, link, int(rx))
        return int(self.work.totals(until)[2] * weight * (0.9 if rx else 1.0) / 1024)

    def nvlink_errors(self, t: float, kind: str) -> int:
        self.check_nvlink()
        replays = int(self.work.totals(t)[5])
        return {"replay": replays, "crc_flit": replays // 4, "crc_data": replays // 16}.get(kind, 0)

    def nvlink_count(self) -> int:
        self.check_nvlink()
        return self.model.nvlink_links
