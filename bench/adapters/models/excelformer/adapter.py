"""ExcelFormer: Chen, Yan, Chen, Chen, Wu, Wu 2023/2024, "ExcelFormer: A neural network surpassing GBDTs
on tabular data" / "Can a Deep Learning Model be a Sure Bet for Tabular Prediction?" (KDD 2024).
Written here from the paper (no package provides it); the authors' code (github.com/WhatAShot/ExcelFormer)
was read for defaults and the search space.

  * Features are ordered by their mutual information with the target (sklearn's estimator, on the
    training part only). Each feature is a token: x -> (w1 x + b1) * tanh(w2 x + b2) (a GLU-style
    embedding per feature).
  * Semi-permeable attention (DiaM): a feature attends only to itself and to MORE informative features,
    so noise from uninformative features cannot leak into the informative ones (mask below).
  * AiuM: a per-token GLU feed-forward, (z W1 + b1) * tanh(z W2 + b2), no mixing across features.
  * Attenuated initialization: attention and AiuM weights start 100x smaller than Kaiming (init_scale
    0.01), so the network starts close to the identity on its tokens (smooth, as the paper argues).
  * Output: tokens -> linear over the feature axis -> LayerNorm -> PReLU -> linear head.
  * Training augmentations (the loss uses the mixed targets):
      Feat-Mix: a row takes a random subset of its features from a partner row; its target weight is
      the share of mutual information its own features carry.
      Hidden-Mix: a row takes a random subset of the token-embedding dimensions (all features alike) from
      a partner row; its target weight is the share of dimensions it kept.
    The share lambda per row ~ Beta(alpha, alpha); exactly round(lambda * n) features / dimensions are
    the row's own, so the target weights are the realized shares.
Categoricals are target-encoded (sklearn TargetEncoder, cross-fitted on the training part), as the
authors do with a CatBoost encoder, and join the numerics as features.
"""

from __future__ import annotations

import functools

import numpy as np

from bench.adapters import register_adapter
from bench.adapters.framework.contract import Capabilities
from bench.adapters.framework.neural_base import SMOKE_TRAINING, TRAINING_DEFAULTS, NeuralAdapter
from bench.adapters.space import CategoricalParam, FloatParam, IntParam

MIX_TYPES = ("none", "feat_mix", "hidden_mix")
MI_MAX_ROWS = 20_000  # mutual information (kNN estimator) on at most this many training rows: its cost grows fast


@register_adapter
class ExcelFormerAdapter(NeuralAdapter):
    name = "excelformer"
    libraries = ("torch", "scikit-learn")
    input_kind = "numcat"
    capabilities = Capabilities(gpu="optional", max_features=1000)  # a token per feature, as FT-Transformer
    # Defaults: the authors' default configuration and training protocol (github.com/WhatAShot/ExcelFormer,
    # commit 17f7052, run_default_config_excel.py): 3 layers, d_token 256, 32 heads, attention dropout
    # 0.3, FFN and residual dropout 0, init_scale 0.01, AdamW lr 1e-4 (no weight decay on the tokenizer,
    # norms and biases), Beta(0.5, 0.5) for the mixing share; at most 500 epochs, early stopping after
    # 200 epochs without improvement (--early_stop 200), 10 epochs of linear learning-rate warm-up then
    # cosine decay to 0 at epoch 500 (CosineAnnealingLR stepped per epoch), batch size by the number of
    # features (authors_batch_size). Departures: weight decay 1e-6 instead of 0 (the search space's
    # practically-none end: the space cannot hold its point mass at 0); early stopping on the shared
    # rule (validation log loss / RMSE, never before 20 epochs) where they stop on validation ROC AUC /
    # accuracy / RMSE; Hidden-Mix as the one default (their default runs report Feat-Mix and Hidden-Mix
    # separately, run_experiment/excel-former/run_default_config.sh); categoricals target-encoded with
    # scikit-learn's cross-fitted TargetEncoder where they use a CatBoost encoder.
    defaults = {
        **TRAINING_DEFAULTS,
        "lr": 1e-4,
        "weight_decay": 1e-6,
        "batch_size": "by_features",
        "max_epochs": 500,
        "patience": 200,
        "lr_schedule": "warmup_cosine",
        "warmup_epochs": 10,
        "n_layers": 3,
        "d_token": 256,
        "n_heads": 32,
        "attention_dropout": 0.3,
        "ffn_dropout": 0.0,
        "residual_dropout": 0.0,
        "init_scale": 0.01,
        "mix_type": "hidden_mix",
        "mix_alpha": 0.5,
    }
    # d_token and n_heads are categorical in the space: smoke values must be among the choices.
    smoke_params = {**SMOKE_TRAINING, "n_layers": 1, "d_token": 64, "n_heads": 4}
    # Search space: the authors' full tuning (tune_fully_after_mix_tune.py): residual dropout U[0, 0.5],
    # layers int[2, 5], heads 2^int[2, 5], d_token 2^int[6, 8], lr logU[3e-5, 1e-3], weight decay
    # {0, logU[1e-6, 1e-3]}, Beta alpha U[0.1, 3], mix type {feat_mix, hidden_mix, none}; attention dropout
    # 0.3 and FFN dropout 0 stay fixed. Weight decay's point mass at 0 is its range's lower end here.
    search_space = {
        "n_layers": IntParam(2, 5),
        "d_token": CategoricalParam((64, 128, 256)),
        "n_heads": CategoricalParam((4, 8, 16, 32)),
        "residual_dropout": FloatParam(0.0, 0.5),
        "lr": FloatParam(3e-5, 1e-3, log=True),
        "weight_decay": FloatParam(1e-6, 1e-3, log=True),
        "mix_type": CategoricalParam(MIX_TYPES),
        "mix_alpha": FloatParam(0.1, 3.0),
    }

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        from bench.adapters.framework.torch_training import TrainConfig, train_network

        p = self.params
        if p["mix_type"] not in MIX_TYPES:
            raise ValueError(f"mix_type must be one of {MIX_TYPES}, got {p['mix_type']!r}")
        self._features = MIOrderedFeatures(self.task, self.ctx.seed)
        x_train = self._features.fit_transform(X_train, y_train)
        x_val = self._features.transform(X_val)
        batch_size = authors_batch_size(x_train.shape[1]) if p["batch_size"] == "by_features" else p["batch_size"]
        cfg = TrainConfig.from_params({**p, "batch_size": batch_size})
        self._net = train_network(lambda d_out: self.build_network(x_train, d_out), self.task, self.ctx,
                                  x_train, y_train, x_val, y_val, cfg,
                                  param_groups=self.param_groups, training_loss=self.training_loss())
        self.kept_val_predictions = self._net.val_predictions

    def _predict_raw(self, X):
        return self._net.predict(self._features.transform(X))

    def build_network(self, X, d_out: int):
        p = self.params
        return ExcelFormerNet(X.shape[1], d_out, self._features.mi_weights, n_layers=int(p["n_layers"]),
                              d_token=int(p["d_token"]), n_heads=int(p["n_heads"]),
                              attention_dropout=float(p["attention_dropout"]), ffn_dropout=float(p["ffn_dropout"]),
                              residual_dropout=float(p["residual_dropout"]), init_scale=float(p["init_scale"]))

    def param_groups(self, model, weight_decay: float) -> list[dict]:
        # The authors' grouping: no weight decay on the feature embeddings, normalization layers, biases.
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and not n.startswith("tokenizer")]
        ids = {id(p) for p in decay}
        rest = [p for p in model.parameters() if id(p) not in ids]
        return [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0})
                if g["params"]]

    def training_loss(self):
        if self.params["mix_type"] == "none":
            return None
        return functools.partial(mixup_loss, mix_type=self.params["mix_type"], alpha=float(self.params["mix_alpha"]),
                                 classification=self.task.is_classification)


def authors_batch_size(n_features: int) -> int:
    """The ExcelFormer authors' batch size by feature count (run_default_config_excel.py, the branch for
    datasets of Grinsztajn et al. 2022): 512 up to 32 features, 128 up to 100, 32 up to 1000, else 16."""
    for limit, size in ((32, 512), (100, 128), (1000, 32)):
        if n_features <= limit:
            return size
    return 16


class MIOrderedFeatures:
    """One float32 matrix of numerics and target-encoded categoricals, its columns sorted by mutual
    information with the target (most informative first). Fit on the training part only."""

    def __init__(self, task, seed: int):
        self.task, self.seed = task, int(seed)

    def fit_transform(self, X, y) -> np.ndarray:
        from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

        x_num, x_cat = X
        self.encoder = None
        parts = [np.asarray(x_num, dtype=np.float32)]
        if x_cat.shape[1]:
            self.encoder, encoded = _fit_target_encoder(x_cat, y, self.task, self.seed)
            parts.append(encoded)
        matrix = np.concatenate(parts, axis=1)
        rows = np.random.default_rng(self.seed).permutation(len(matrix))[:MI_MAX_ROWS]
        mi = (mutual_info_classif if self.task.is_classification else mutual_info_regression)(
            matrix[rows], y[rows], random_state=self.seed)
        self.order = feature_order(mi)
        mi = np.clip(mi[self.order], 0.0, None)
        # Normalized MI, the Feat-Mix target weights; no informative feature at all: equal weights.
        self.mi_weights = mi / mi.sum() if mi.sum() > 0 else np.full(len(mi), 1.0 / len(mi))
        return np.ascontiguousarray(matrix[:, self.order])

    def transform(self, X) -> np.ndarray:
        x_num, x_cat = X
        parts = [np.asarray(x_num, dtype=np.float32)]
        if self.encoder is not None:
            parts.append(self.encoder.transform(x_cat).astype(np.float32))
        return np.ascontiguousarray(np.concatenate(parts, axis=1)[:, self.order])


def feature_order(mi: np.ndarray) -> np.ndarray:
    """Column order by decreasing mutual information (ties: original order, so it is deterministic)."""
    return np.argsort(-np.asarray(mi), kind="stable")


def _fit_target_encoder(x_cat, y, task, seed: int):
    """Cross-fitted target encoding (training rows are encoded by folds that exclude them), standardized."""
    import sklearn
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler, TargetEncoder
    from sklearn.utils.fixes import parse_version

    target_type = {"binary": "binary", "multiclass": "multiclass"}.get(task.task_type, "continuous")
    if parse_version(sklearn.__version__) >= parse_version("1.9"):
        encoder = TargetEncoder(target_type=target_type, cv=KFold(5, shuffle=True, random_state=seed))
    else:  # before 1.9 the folds were set by shuffle/random_state
        encoder = TargetEncoder(target_type=target_type, cv=5, shuffle=True, random_state=seed)
    encoded = encoder.fit_transform(x_cat, y)  # cross-fitted, unlike fit().transform()
    scaler = StandardScaler().fit(encoded)
    return make_pipeline(encoder, scaler), scaler.transform(encoded).astype(np.float32)


def semi_permeable_mask(n_features: int):
    """allowed[i, j]: may feature i (in decreasing-MI order) attend to feature j? Only j <= i, i.e.
    itself and the features more informative than itself."""
    import torch

    return torch.ones(n_features, n_features, dtype=torch.bool).tril()


def mix_rows(x, share, generator=None):
    """Row i keeps exactly round(share_i * m) of its m slots along dim 1 (features or embedding dims)
    and takes the others from a partner row. Returns (mixed x, kept mask (batch, m), partner index)."""
    import torch

    b, m = x.shape[0], x.shape[1] if x.ndim == 2 else x.shape[-1]
    n_keep = torch.round(share * m).long()
    ranks = torch.rand(b, m, device=x.device).argsort(dim=1).argsort(dim=1)  # a random permutation per row
    kept = ranks < n_keep[:, None]
    partner = torch.randperm(b, device=x.device)
    mask = kept.unsqueeze(1) if x.ndim == 3 else kept  # hidden dims: the same dims for every feature
    return torch.where(mask, x, x[partner]), kept, partner


def mixup_loss(net, batch, target, rows, *, mix_type: str, alpha: float, classification: bool):
    """The loop's TrainingLoss for Feat-Mix / Hidden-Mix: predictions on mixed rows vs mixed targets."""
    import torch
    import torch.nn.functional as F

    (x,) = batch
    share = torch.distributions.Beta(alpha, alpha).sample((len(x),)).to(x.device)
    out, weight, partner = net.mixed_forward(x, share, mix_type)
    out = out.float()
    if classification:
        return (weight * F.cross_entropy(out, target, reduction="none")
                + (1 - weight) * F.cross_entropy(out, target[partner], reduction="none")).mean()
    return F.mse_loss(out.squeeze(-1), weight * target + (1 - weight) * target[partner])


@functools.cache
def _network_classes():
    """The torch modules, defined on first use so that importing this file does not import torch."""
    import math

    import torch
    from torch import nn

    def attenuated_(weight, scale: float):
        # Kaiming-uniform bound (fan_in, leaky_relu a=sqrt(5), as nn.Linear) times `scale`.
        bound = scale * math.sqrt(3.0) * nn.init.calculate_gain("leaky_relu", math.sqrt(5)) / math.sqrt(weight.shape[1])
        with torch.no_grad():
            weight.uniform_(-bound, bound)

    class Tokenizer(nn.Module):
        """Feature j -> (w1_j x_j + b1_j) * tanh(w2_j x_j + b2_j), a d_token vector."""

        def __init__(self, n_features: int, d_token: int):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(n_features, d_token))
            self.weight2 = nn.Parameter(torch.empty(n_features, d_token))
            self.bias = nn.Parameter(torch.empty(n_features, d_token))
            self.bias2 = nn.Parameter(torch.empty(n_features, d_token))
            for p in self.parameters():
                attenuated_(p, 1.0)

        def forward(self, x):
            x = x[..., None]
            return (self.weight * x + self.bias) * torch.tanh(self.weight2 * x + self.bias2)

    class SemiPermeableAttention(nn.Module):
        def __init__(self, n_features: int, d: int, n_heads: int, dropout: float, init_scale: float):
            super().__init__()
            if d % n_heads:
                raise ValueError(f"d_token={d} must be divisible by n_heads={n_heads}")
            self.n_heads, self.dropout = n_heads, dropout
            self.qkv = nn.Linear(d, 3 * d)
            attenuated_(self.qkv.weight, init_scale)
            nn.init.zeros_(self.qkv.bias)
            self.out = nn.Linear(d, d) if n_heads > 1 else nn.Identity()
            if n_heads > 1:
                attenuated_(self.out.weight, 1.0)
                nn.init.zeros_(self.out.bias)
            self.register_buffer("allowed", semi_permeable_mask(n_features), persistent=False)

        def forward(self, z):
            b, f, d = z.shape
            q, k, v = (t.reshape(b, f, self.n_heads, d // self.n_heads).transpose(1, 2)
                       for t in self.qkv(z).chunk(3, dim=-1))
            out = nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=self.allowed, dropout_p=self.dropout if self.training else 0.0)
            return self.out(out.transpose(1, 2).reshape(b, f, d))

    class AiuM(nn.Module):
        """Per-token GLU: (z W1 + b1) * tanh(z W2 + b2)."""

        def __init__(self, d: int, init_scale: float):
            super().__init__()
            self.linear = nn.Linear(d, 2 * d)
            attenuated_(self.linear.weight, init_scale)
            nn.init.zeros_(self.linear.bias)

        def forward(self, z):
            a, b = self.linear(z).chunk(2, dim=-1)
            return a * torch.tanh(b)

    class Net(nn.Module):
        def __init__(self, n_features: int, d_out: int, mi_weights, *, n_layers: int, d_token: int, n_heads: int,
                     attention_dropout: float, ffn_dropout: float, residual_dropout: float, init_scale: float):
            super().__init__()
            self.tokenizer = Tokenizer(n_features, d_token)
            self.layers = nn.ModuleList(nn.ModuleDict({
                # pre-normalization; the first layer's attention sees the raw tokens (as in FT-Transformer)
                "norm0": nn.LayerNorm(d_token) if i else nn.Identity(),
                "attention": SemiPermeableAttention(n_features, d_token, n_heads, attention_dropout, init_scale),
                "norm1": nn.LayerNorm(d_token),
                "aium": AiuM(d_token, init_scale),
            }) for i in range(n_layers))
            self.ffn_dropout, self.residual_dropout = nn.Dropout(ffn_dropout), nn.Dropout(residual_dropout)
            self.pool = nn.Linear(n_features, 1)  # tokens -> one vector, a learned weighting of the features
            self.norm = nn.LayerNorm(d_token)
            self.activation = nn.PReLU()
            self.head = nn.Linear(d_token, d_out)
            attenuated_(self.pool.weight, 1.0)
            attenuated_(self.head.weight, 1.0)
            self.register_buffer("mi_weights", torch.as_tensor(np.asarray(mi_weights), dtype=torch.float32),
                                 persistent=False)

        def blocks(self, z):
            for layer in self.layers:
                z = z + self.residual_dropout(layer["attention"](layer["norm0"](z)))
                z = z + self.residual_dropout(self.ffn_dropout(layer["aium"](layer["norm1"](z))))
            return z

        def readout(self, z):
            z = self.pool(z.transpose(1, 2)).squeeze(-1)
            return self.head(self.activation(self.norm(z)))

        def forward(self, x):
            return self.readout(self.blocks(self.tokenizer(x)))

        def mixed_forward(self, x, share, mix_type: str):
            """(outputs on mixed rows, each row's own-target weight, partner rows) for training."""
            z = self.tokenizer(x)
            if mix_type == "feat_mix":  # the tokenizer is per feature: mixing tokens = mixing features
                z, kept, partner = mix_rows(z.transpose(1, 2), share)
                z = z.transpose(1, 2)
                weight = (kept.float() * self.mi_weights).sum(dim=1)
            elif mix_type == "hidden_mix":
                z, kept, partner = mix_rows(z, share)
                weight = kept.float().mean(dim=1)
            else:
                raise ValueError(f"mix_type must be feat_mix or hidden_mix, got {mix_type!r}")
            return self.readout(self.blocks(z)), weight, partner

    return Net


def ExcelFormerNet(*args, **kwargs):
    """Build the ExcelFormer module (see _network_classes for the layers)."""
    return _network_classes()(*args, **kwargs)
