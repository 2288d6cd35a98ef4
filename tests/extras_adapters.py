"""Test-only variant of an optional-extra model, registered through BENCH_ADAPTER_MODULES so that spawned
sweep workers know it: RealMLP with its smoke settings as defaults, for quick CLI sweeps (the real
`realmlp` trains 256 epochs, which takes minutes on a busy 2-core machine)."""

from bench.adapters import register_adapter
from bench.adapters.models.realmlp import RealMLPAdapter


@register_adapter
class QuickRealMLP(RealMLPAdapter):
    name = "test_realmlp_quick"
    defaults = {**RealMLPAdapter.defaults, **RealMLPAdapter.smoke_params}
