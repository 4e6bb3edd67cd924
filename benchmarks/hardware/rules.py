"""What the agent exports, where nvidia-smi's XML shows the same value, and how close they must be.

Tolerances (|agent - nvidia-smi| allowed beyond the range of the two reports taken just before
and just after the agent's sample):
- static values (totals, limits, max clocks, link generation and width, counters, states): exact
  (memory total 1.5 MiB and reserved 2 MiB: nvidia-smi rounds MiB);
- power: max(15 W, 10 %) (NVML's and nvidia-smi's averages end at different moments);
- temperature: 3 °C; utilisation: 0.05; memory used: 64 MiB;
- current SM, graphics and video clocks: max(15 MHz, 10 %); memory clock: 1 MHz.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.hardware import smi_xml as x


@dataclass(frozen=True)
class Rule:
    metric: str
    labels: dict[str, str]
    read: x.Reader
    tol_abs: float = 0.0
    tol_rel: float = 0.0
    note: str = ""

    def title(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels.items())
        return f"{self.metric}{{{inner}}}" if inner else self.metric


def _r(
    metric: str,
    labels: dict[str, str],
    path: str,
    convert: x.Convert,
    tol_abs: float = 0.0,
    tol_rel: float = 0.0,
) -> Rule:
    return Rule(metric, labels, x.tag(path, convert), tol_abs, tol_rel)


W, PCT, MIB_B, MHZ_B = x.number(), x.number(0.01), x.number(x.MIB), x.number(x.MHZ)
PCI = "pci/pci_gpu_link_info"
POWER = "gpu_power_readings"
COUNTERS = "clocks_event_reasons_counters/clocks_event_reasons_counters_"
REASONS = {
    "idle": "gpu_idle",
    "applications_clocks": "applications_clocks_setting",
    "sw_power_cap": "sw_power_cap",
    "hw_slowdown": "hw_slowdown",
    "sync_boost": "sync_boost",
    "sw_thermal": "sw_thermal_slowdown",
    "hw_thermal": "hw_thermal_slowdown",
    "hw_power_brake": "hw_power_brake_slowdown",
    "display_clocks": "display_clocks_setting",
}


def _power() -> list[Rule]:
    avg = Rule(
        "suanli_gpu_power_watts",
        {},
        x.tag(f"{POWER}/average_power_draw", W),
        15.0,
        0.10,
        "NVML power usage is a 1 s average on Hopper: nvidia-smi's average_power_draw",
    )
    limits = [
        _r("suanli_gpu_power_limit_watts", {"limit": name}, f"{POWER}/{tag}", W, 0.5)
        for name, tag in (
            ("enforced", "current_power_limit"),
            ("default", "default_power_limit"),
            ("min", "min_power_limit"),
            ("max", "max_power_limit"),
        )
    ]
    return [avg, *limits]


def _memory_and_thermal() -> list[Rule]:
    return [
        _r("suanli_gpu_memory_total_bytes", {}, "fb_memory_usage/total", MIB_B, 1.5 * x.MIB),
        _r("suanli_gpu_memory_used_bytes", {}, "fb_memory_usage/used", MIB_B, 64 * x.MIB),
        _r("suanli_gpu_memory_reserved_bytes", {}, "fb_memory_usage/reserved", MIB_B, 2 * x.MIB),
        _r("suanli_gpu_temperature_celsius", {"sensor": "gpu"}, "temperature/gpu_temp", W, 3.0),
        _r(
            "suanli_gpu_temperature_celsius",
            {"sensor": "memory"},
            "temperature/memory_temp",
            W,
            3.0,
        ),
        _r("suanli_gpu_fan_speed_ratio", {}, "fan_speed", PCT, 0.02),
    ]


def _clocks() -> list[Rule]:
    rules = []
    for clock, xml_name in (("sm", "sm"), ("graphics", "graphics"), ("video", "video")):
        path = f"clocks/{xml_name}_clock"
        rules.append(_r("suanli_gpu_clock_hertz", {"clock": clock}, path, MHZ_B, 15e6, 0.10))
    rules.append(_r("suanli_gpu_clock_hertz", {"clock": "memory"}, "clocks/mem_clock", MHZ_B, 1e6))
    for clock, xml_name in (("sm", "sm"), ("graphics", "graphics"), ("video", "video")):
        path = f"max_clocks/{xml_name}_clock"
        rules.append(_r("suanli_gpu_clock_max_hertz", {"clock": clock}, path, MHZ_B, 1e6))
    rules.append(
        _r("suanli_gpu_clock_max_hertz", {"clock": "memory"}, "max_clocks/mem_clock", MHZ_B, 1e6)
    )
    return rules


def _pcie() -> list[Rule]:
    n = x.number()
    return [
        _r(
            "suanli_gpu_pcie_link_generation",
            {"link": "current"},
            f"{PCI}/pcie_gen/current_link_gen",
            n,
        ),
        _r("suanli_gpu_pcie_link_generation", {"link": "max"}, f"{PCI}/pcie_gen/max_link_gen", n),
        _r(
            "suanli_gpu_pcie_link_width",
            {"link": "current"},
            f"{PCI}/link_widths/current_link_width",
            n,
        ),
        _r("suanli_gpu_pcie_link_width", {"link": "max"}, f"{PCI}/link_widths/max_link_width", n),
        _r("suanli_gpu_pcie_replays_total", {}, "pci/replay_counter", n),
    ]


def _utilisation() -> list[Rule]:
    return [
        _r("suanli_gpu_utilization_ratio", {}, "utilization/gpu_util", PCT, 0.05),
        _r(
            "suanli_gpu_memory_controller_utilization_ratio",
            {},
            "utilization/memory_util",
            PCT,
            0.05,
        ),
        _r("suanli_gpu_encoder_utilization_ratio", {}, "utilization/encoder_util", PCT, 0.05),
        _r("suanli_gpu_decoder_utilization_ratio", {}, "utilization/decoder_util", PCT, 0.05),
        _r("suanli_gpu_performance_state", {}, "performance_state", x.pstate),
    ]


def _reliability() -> list[Rule]:
    n, rows = x.number(), "remapped_rows/remapped_row_"
    ecc = "nvidia-smi aggregate SRAM + DRAM (NVML_FI_DEV_ECC_SBE/DBE_AGG_TOTAL)"
    return [
        Rule("suanli_gpu_ecc_errors_total", {"error": "corrected"}, x.ecc_total(False), note=ecc),
        Rule("suanli_gpu_ecc_errors_total", {"error": "uncorrected"}, x.ecc_total(True), note=ecc),
        _r("suanli_gpu_remapped_rows", {"kind": "correctable"}, f"{rows}corr", n),
        _r("suanli_gpu_remapped_rows", {"kind": "uncorrectable"}, f"{rows}unc", n),
        _r("suanli_gpu_row_remap_state", {"state": "pending"}, f"{rows}pending", x.yes_no),
        _r("suanli_gpu_row_remap_state", {"state": "failed"}, f"{rows}failure", x.yes_no),
        _r("suanli_gpu_recovery_action", {}, "gpu_recovery_action", x.recovery),
    ]


def _throttling() -> list[Rule]:
    seconds = x.number(1e-6)
    mapping = "counter mapping assumed (NVML violation policy vs nvidia-smi counter)"
    rules = [
        Rule(
            "suanli_gpu_throttle_seconds_total",
            {"reason": reason},
            x.tag(COUNTERS + counter, seconds),
            1.0,
            0.0,
            mapping,
        )
        for reason, counter in (
            ("power", "sw_power_cap"),
            ("sync_boost", "sync_boost"),
            ("thermal", "sw_therm_slowdown"),
        )
    ]
    for reason, xml_name in REASONS.items():
        path = f"clocks_event_reasons/clocks_event_reason_{xml_name}"
        rules.append(_r("suanli_gpu_clock_event_active", {"reason": reason}, path, x.active))
    return rules


def rules() -> list[Rule]:
    return [
        *_power(),
        *_memory_and_thermal(),
        *_clocks(),
        *_pcie(),
        *_utilisation(),
        *_reliability(),
        *_throttling(),
    ]


INFO_LABELS = {  # suanli_gpu_info label -> (XML path under <gpu>, or "/path" from the root)
    "model": "product_name",
    "uuid": "uuid",
    "serial": "serial",
    "vbios_version": "vbios_version",
    "architecture": "product_architecture",
    "mig_mode": "mig_mode/current_mig",
    "compute_mode": "compute_mode",
    "driver_version": "/driver_version",
    "cuda_driver_version": "/cuda_version",
}
