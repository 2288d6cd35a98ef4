"""mlp_tjepa's torch part: the pretraining call with its share of the budget, and the downstream network
(the pretrained encoder, frozen or fine-tuned, under the MLP of `mlp`)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np
import torch
from rtdl_revisiting_models import MLP
from torch import nn

from bench.adapters.framework.context import FitContext
from bench.adapters.framework.tjepa import PretrainedEncoder, TJEPAConfig, pretrain


def tjepa_config(p: dict[str, Any]) -> TJEPAConfig:
    return TJEPAConfig(d_token=int(p["pretrain_d_token"]), n_layers=int(p["pretrain_layers"]),
                       n_heads=int(p["pretrain_heads"]), pred_layers=int(p["pretrain_pred_layers"]),
                       batch_size=int(p["pretrain_batch_size"]), max_epochs=int(p["pretrain_max_epochs"]),
                       patience=int(p["pretrain_patience"]))


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the encoder's tensors (names and bytes, in name order)."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def pretrain_encoder(X_train: tuple[np.ndarray, np.ndarray], p: dict[str, Any],
                     ctx: FitContext) -> tuple[PretrainedEncoder, dict[str, Any]]:
    """Pretrain on the training part's features within `pretrain_share` of the time left (when the fit has a
    deadline); (encoder, what fit_info says of it)."""
    share = float(p["pretrain_share"])
    if not 0.0 < share < 1.0:
        raise ValueError(f"pretrain_share must be in (0, 1), got {share}")
    left = ctx.seconds_left()
    deadline = None if left is None else ctx.clock() + share * max(0.0, left)
    sub = dataclasses.replace(ctx, report=None, info={}, deadline=deadline, predict_rows=0)
    pretrained = pretrain(X_train, tjepa_config(p), sub)
    summary = {**pretrained.info, "weights_sha256": weights_digest(pretrained.state)}
    return pretrained, summary


class PretrainedMLP(nn.Module):
    """encoder (all tokens, flattened) -> MLP. A frozen encoder stays in eval mode and gets no gradient."""

    def __init__(self, pretrained: PretrainedEncoder, p: dict[str, Any], d_out: int):
        super().__init__()
        self.frozen = not bool(p["finetune_encoder"])
        self.encoder = pretrained.encoder()  # eval mode, no gradient: the pretrained target encoder
        if not self.frozen:
            self.encoder.requires_grad_(True)
        self.mlp = MLP(d_in=pretrained.width, d_out=d_out, n_blocks=int(p["n_blocks"]), d_block=int(p["d_block"]),
                       dropout=float(p["dropout"]))

    def train(self, mode: bool = True) -> "PretrainedMLP":
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            z = self.encoder(x_num, x_cat).flatten(1)
        return self.mlp(z)
