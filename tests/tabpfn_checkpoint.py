"""Randomly initialised TabPFN v2 checkpoints in tabpfn's own format, for testing the weights path offline.

The real weights cannot be downloaded on the test machines. A checkpoint with the v2 architecture, tiny
sizes and random parameters goes through exactly the loading code real weights go through (tabpfn's
Checkpoint -> architecture.parse_config -> get_architecture -> load_state_dict); its predictions are
meaningless, so tests check shapes, finiteness and that the input reaches the output, never accuracy.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


def write_random_checkpoint(path: Path, regression: bool, seed: int = 0) -> Path:
    import torch
    from tabpfn.architectures import tabpfn_v2  # tabpfn's single-file v2 architecture

    config, _ = tabpfn_v2.parse_config({
        "emsize": 16, "nlayers": 1, "nhead": 2,
        # a classifier has one output per class (10 for v2), a regressor one per bucket
        "max_num_classes": 0 if regression else 10, "num_buckets": 32 if regression else -1,
    })
    torch.manual_seed(seed)
    model = tabpfn_v2.get_architecture(config)
    with torch.no_grad():  # the library zero-initialises some projections: make every weight matter
        for param in model.parameters():
            param.normal_(0.0, 0.3)
    state = dict(model.state_dict())
    if regression:  # v2 regressors keep their output distribution's state next to the model's
        from tabpfn.architectures.shared.bar_distribution import FullSupportBarDistribution

        borders = FullSupportBarDistribution(torch.linspace(-4.0, 4.0, 33))
        state.update({f"criterion.{k}": v for k, v in borders.state_dict().items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "config": dataclasses.asdict(config), "architecture_name": "tabpfn_v2"},
               path)
    return path
