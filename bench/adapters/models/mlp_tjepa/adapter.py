"""The MLP with T-JEPA self-supervised pretraining (Thimonier et al., "T-JEPA: Augmentation-Free
Self-Supervised Learning for Tabular Data", ICLR 2025): the `+tjepa` variant of `mlp`, so that a leaderboard
compares the same MLP with and without pretraining at an equal, declared budget.

Pretrain, then fit, inside one `fit` (bench.adapters.framework.tjepa has the method):
  1. Pretraining sees the preprocessed *training part only* ((x_num, x_cat): no labels, no validation or
     test rows; `pretrain` takes nothing else). Validation rows are not used even for its early stopping: a
     held-out slice of the training part is.
  2. The pretrained target encoder initializes the downstream network: encoder -> all tokens flattened ->
     the MLP of `mlp` (rtdl_revisiting_models.MLP, the same blocks). `finetune_encoder` False (default) keeps
     the encoder frozen, the authors' downstream protocol (their benchmark models train on the frozen target
     encoder's embeddings: jose-melo/t-jepa, src/datasets/online_dataset.py:86-92, src/train.py:250-285);
     True trains it on with the MLP.
  3. Budget: pretraining runs inside fit, so it counts in the trial's fit seconds, the tuning clock and the
     job's time limit like any training. With a deadline, pretraining may use `pretrain_share` of the time
     left when fit starts; the MLP gets the rest. Every trial pretrains again (the MLP's configuration is
     what is tuned; a cache across trials would hide the cost from all but the first trial).
fit_info["pretraining"] says what the pretraining did: epochs, best epoch, how it stopped, seconds, held-out
rows, and a SHA-256 of the encoder weights (tests compare it across runs that differ only in test rows).
"""

from __future__ import annotations

from typing import ClassVar

from bench.adapters import register_adapter
from bench.adapters.framework.contract import Capabilities
from bench.adapters.framework.neural_base import NeuralAdapter
from bench.adapters.models.mlp import MLPAdapter, MLPParams


class MLPTJEPAParams(MLPParams):
    finetune_encoder: bool
    pretrain_share: float  # of the fit's time left at a deadline
    pretrain_d_token: int
    pretrain_layers: int
    pretrain_heads: int
    pretrain_pred_layers: int
    pretrain_batch_size: int
    pretrain_max_epochs: int
    pretrain_patience: int


@register_adapter
class MLPTJEPAAdapter(NeuralAdapter[MLPTJEPAParams]):
    name = "mlp_tjepa"
    libraries = ("torch", "rtdl_revisiting_models")
    capabilities = Capabilities(gpu="optional")
    input_kind = "numcat"  # the encoder tokenizes numerics by value and categoricals by level
    # Defaults: the MLP's (bench.adapters.models.mlp) and T-JEPA's (bench.adapters.framework.tjepa.TJEPAConfig:
    # the authors' scripts/launch_tjepa.sh, commit 98dda99: d_token 64, 16 encoder layers, 2 heads, 16
    # predictor layers, batch 512, 300 epochs, patience 100; the other TJEPAConfig fields as there).
    # pretrain_share 0.5: ours (the paper trains the encoder to convergence without a budget).
    defaults: ClassVar[MLPTJEPAParams] = {
        **MLPAdapter.defaults,
        "finetune_encoder": False,
        "pretrain_share": 0.5,
        "pretrain_d_token": 64,
        "pretrain_layers": 16,
        "pretrain_heads": 2,
        "pretrain_pred_layers": 16,
        "pretrain_batch_size": 512,
        "pretrain_max_epochs": 300,
        "pretrain_patience": 100,
    }
    smoke_params = {**MLPAdapter.smoke_params, "pretrain_d_token": 8, "pretrain_layers": 1, "pretrain_heads": 2,
                    "pretrain_pred_layers": 1, "pretrain_max_epochs": 2, "pretrain_patience": 2}
    # Search space: exactly mlp's (bench/adapters/models/mlp.py, its sources cited there), so that mlp and
    # mlp_tjepa differ only by the pretraining. T-JEPA's own settings stay at the authors' values: tuning
    # them would repeat a pretraining per trial for each draw.
    search_space = MLPAdapter.search_space

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        from bench.adapters.models.mlp_tjepa.network import pretrain_encoder

        # Only the training part's features reach the pretraining.
        self._pretrained, summary = pretrain_encoder(X_train, dict(self.params), self.ctx)
        super().fit(X_train, y_train, X_val, y_val)
        self.ctx.info["pretraining"] = summary

    def build_network(self, X, d_out: int):
        from bench.adapters.models.mlp_tjepa.network import PretrainedMLP

        return PretrainedMLP(self._pretrained, dict(self.params), d_out)
