"""Randomly initialised TabICL and TabDPT checkpoints in their packages' own formats, for testing the weights
path offline (the real weights cannot be downloaded on the test machines).

TabICL: torch.save({"config": kwargs of tabicl._model.tabicl.TabICL, "state_dict": ...}), what
TabICLClassifier / TabICLRegressor._load_model reads (torch.load -> TabICL(**config) -> load_state_dict).
TabDPT: a safetensors file whose metadata "cfg" is the training config as JSON (model, training and env
sections), what tabdpt.estimator.TabDPTEstimator._load_model reads (safe_open -> OmegaConf ->
TabDPTModel.load -> load_state_dict).
Tiny sizes, random parameters: predictions are meaningless, so tests check shapes, finiteness and that the
rows reach the output, never accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path


def _randomize(model, seed: int) -> None:
    """The packages zero-initialise some output projections: make every weight matter."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.3)


def write_random_tabicl(path: Path, regression: bool, seed: int = 0) -> Path:
    import torch
    from tabicl._model.tabicl import TabICL

    config = {"max_classes": 0 if regression else 10, "num_quantiles": 15, "embed_dim": 16,
              "col_num_blocks": 1, "col_nhead": 2, "col_num_inds": 4, "row_num_blocks": 1, "row_nhead": 2,
              "row_num_cls": 2, "icl_num_blocks": 1, "icl_nhead": 2, "ff_factor": 2}
    model = TabICL(**config)
    _randomize(model, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "state_dict": model.state_dict()}, path)
    return path


TABDPT_CONFIG = {
    "training": {"dropout": 0.0}, "env": {"device": "cpu"},
    "model": {"enc_cell_dim": 0, "max_num_classes": 10, "regression_bin_count": 16, "regression_bin_min": -4.0,
              "regression_bin_max": 4.0, "nhead": 2, "ff_dim": 32, "emsize": 16, "nlayers": 1,
              "max_num_features": 8, "min_eval_context": 64, "max_eval_context": 4096, "y_encoder_dim": 8,
              "num_col_attn_layers": 0, "n_thinking_rows": 0},
}


def write_random_tabdpt(path: Path, seed: int = 0) -> Path:
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    model = _tabdpt_model(OmegaConf.create(TABDPT_CONFIG))
    _randomize(model, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"cfg": json.dumps(TABDPT_CONFIG)})
    return path


def _tabdpt_model(config):
    """The network TabDPTModel.load builds from a config (the same arguments), before it loads a state dict."""
    from tabdpt.model import TabDPTModel

    m = config.model
    return TabDPTModel(dropout=config.training.dropout, enc_cell_dim=m.enc_cell_dim, n_out=m.max_num_classes,
                       regression_bin_count=m.regression_bin_count, regression_bin_min=m.regression_bin_min,
                       regression_bin_max=m.regression_bin_max, nhead=m.nhead, nhid=m.ff_dim, ninp=m.emsize,
                       nlayers=m.nlayers, num_features=m.max_num_features, base_len=m.min_eval_context,
                       max_len=m.max_eval_context, y_encoder_dim=m.y_encoder_dim,
                       num_col_attn_layers=m.num_col_attn_layers, n_thinking_rows=m.n_thinking_rows,
                       use_flash=False)
