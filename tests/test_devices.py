"""demokit.devices: whether a device runs bfloat16 products natively."""

from __future__ import annotations

import torch

from demokit.devices import has_fast_bfloat16


def test_has_fast_bfloat16_reads_the_cpu_probes(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert has_fast_bfloat16(cpu) is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert has_fast_bfloat16(cpu) is True
