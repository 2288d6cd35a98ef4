"""ModernNCA: Ye, Yin, Zhan, Chao 2024, "Revisiting Nearest Neighbor for Tabular Data: A Deep Tabular
Baseline Two Decades Later" (ICLR 2025). Written here (no package provides it).

Neighbourhood Components Analysis with a deep encoder. An encoder phi (PLR "lite" embeddings of the
numerics + one-hot categoricals -> linear map to `dim`, optionally MLP blocks) maps rows to an embedding;
a row's prediction is the label average of training rows weighted by softmax(-||phi(x) - phi(x_j)|| / T):
class probabilities (one-hot labels averaged) or a regression value. Training minimizes the log loss /
squared error of these predictions, so the encoder learns which rows should be neighbours.
  * Stochastic neighbourhood sampling (SNS): each training batch's neighbourhood is the batch itself
    plus a random share `sample_rate` of the other training rows, re-drawn per batch (cheaper and, the
    paper finds, better regularized than the full training set).
  * A training row is never its own neighbour (it would teach the encoder to memorize).
  * At inference the neighbourhood is the whole training part; its embeddings are computed once per
    evaluation (cached while the weights do not change) and distances are taken in chunks of query rows
    so that memory stays bounded on large training parts.
Classification outputs are log(p + 1e-7): the shared loop's softmax turns them back into p (renormalized),
and its cross-entropy is then the paper's negative log-likelihood.
"""

from __future__ import annotations

import functools

from bench.adapters import register_adapter
from bench.adapters.framework.neural_base import SMOKE_TRAINING, TRAINING_DEFAULTS, NeuralAdapter, split_inputs
from bench.adapters.space import FloatParam, IntParam

# Query rows x candidate rows per distance chunk at inference (2**23 float32 = 32 MiB per chunk).
PAIRS_PER_CHUNK = 2**23
LOG_EPS = 1e-7  # the paper's code takes log(p + 1e-7): a class no neighbour has keeps a finite loss


@register_adapter
class ModernNCAAdapter(NeuralAdapter):
    name = "modern_nca"
    libraries = ("torch", "rtdl_num_embeddings")
    input_kind = "numcat"
    # Defaults: the authors' default configuration and training protocol, TALENT (github.com/LAMDA-Tabular/
    # TALENT, commit c9d24c8): TALENT/configs/default/modernNCA.json: dim 128, no MLP blocks (d_block 512,
    # dropout 0.1 unused then), temperature 1, sample_rate 0.5, PLR lite embeddings (77 frequencies, scale
    # 0.0443, d_embedding 34), AdamW lr 0.01, weight decay 2e-4; TALENT/configs/deep_configs.json: at most
    # 200 epochs (max_epoch), batch size 1024; TALENT/model/methods/base.py (validate): training stops once
    # more than 20 epochs in a row fail to improve (val_count > 20), i.e. 21 epochs after the best: patience
    # 21 in the shared rule. Departures: early stopping on the shared rule's metric (validation log loss /
    # RMSE, never before 20 epochs) where TALENT watches accuracy / RMSE.
    defaults = {
        **TRAINING_DEFAULTS,
        "lr": 0.01,
        "weight_decay": 2e-4,
        "batch_size": 1024,
        "max_epochs": 200,
        "patience": 21,
        "dim": 128,
        "n_blocks": 0,
        "d_block": 512,
        "dropout": 0.1,
        "temperature": 1.0,
        "sample_rate": 0.5,
        "plr": True,  # False: numerics enter the encoder as they are (the paper's "linear" variant)
        "d_embedding": 34,
        "n_frequencies": 77,
        "frequency_init_scale": 0.04431360576139521,
    }
    smoke_params = {**SMOKE_TRAINING, "batch_size": 32, "dim": 8, "d_block": 8, "d_embedding": 4,
                    "n_frequencies": 4}
    # Search space: the paper's appendix / TALENT configs/opt_space/modernNCA.json:
    #   dim int[64, 1024], n_blocks {0} or int[0, 2], d_block int[64, 1024], dropout U[0, 0.5],
    #   sample_rate U[0.05, 0.6], PLR n_frequencies int[16, 96], frequency_scale logU[0.005, 10],
    #   d_embedding int[16, 64], lr logU[1e-5, 1e-1], weight decay {0, logU[1e-6, 1e-3]}.
    # The temperature stays 1 (not tuned, as in the paper). The {0, ...} point mass of weight decay is
    # approximated by its range's lower end 1e-6 (practically none), n_blocks' point mass by int[0, 2].
    search_space = {
        "dim": IntParam(64, 1024),
        "n_blocks": IntParam(0, 2),
        "d_block": IntParam(64, 1024),
        "dropout": FloatParam(0.0, 0.5),
        "sample_rate": FloatParam(0.05, 0.6),
        "n_frequencies": IntParam(16, 96),
        "frequency_init_scale": FloatParam(0.005, 10.0, log=True),
        "d_embedding": IntParam(16, 64),
        "lr": FloatParam(1e-5, 1e-1, log=True),
        "weight_decay": FloatParam(1e-6, 1e-3, log=True),
    }

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        self._y_train = y_train  # the candidates' labels: build_network stores them in the network
        super().fit(X_train, y_train, X_val, y_val)
        self._y_train = None

    def build_network(self, X, d_out: int):
        from bench.adapters.framework.torch_training import target_scaling

        p = self.params
        n_num, cardinalities = split_inputs(X)
        mean, std = target_scaling(self.task, self._y_train)  # the loop's scale, so outputs map back alike
        labels = self._y_train if self.task.is_classification else (self._y_train - mean) / std
        return ModernNCANet(X, labels, self.task.n_classes, cardinalities, dim=int(p["dim"]),
                            n_blocks=int(p["n_blocks"]), d_block=int(p["d_block"]), dropout=float(p["dropout"]),
                            temperature=float(p["temperature"]), sample_rate=float(p["sample_rate"]),
                            plr=bool(p["plr"]) and n_num > 0, d_embedding=int(p["d_embedding"]),
                            n_frequencies=int(p["n_frequencies"]),
                            frequency_init_scale=float(p["frequency_init_scale"]))

    def training_loss(self):
        return neighbourhood_loss


def neighbourhood_loss(net, batch, target, rows):
    """The loop's TrainingLoss for ModernNCA: predictions from a sampled neighbourhood, self excluded."""
    import torch.nn.functional as F

    out = net.training_forward(batch, rows)
    if net.n_classes:
        return F.cross_entropy(out, target)
    return F.mse_loss(out.squeeze(-1), target)


@functools.cache
def _network_classes():
    """The torch module, defined on first use so that importing this file does not import torch."""
    import numpy as np
    import torch
    from torch import nn

    from bench.adapters.framework.nn_modules import OneHot

    class Block(nn.Module):
        """BatchNorm -> Linear -> ReLU -> Dropout -> Linear back to the embedding width (paper's MLP block)."""

        def __init__(self, dim: int, d_block: int, dropout: float):
            super().__init__()
            self.layers = nn.Sequential(nn.BatchNorm1d(dim), nn.Linear(dim, d_block), nn.ReLU(),
                                        nn.Dropout(dropout), nn.Linear(d_block, dim))

        def forward(self, x):
            return self.layers(x)

    class Net(nn.Module):
        def __init__(self, X, labels, n_classes: int, cardinalities: list[int], *, dim: int, n_blocks: int,
                     d_block: int, dropout: float, temperature: float, sample_rate: float, plr: bool,
                     d_embedding: int, n_frequencies: int, frequency_init_scale: float):
            from rtdl_num_embeddings import PeriodicEmbeddings

            super().__init__()
            x_num, x_cat = (torch.tensor(np.array(a)) for a in X)  # private copies: the inputs stay read-only
            if len(x_num) < 2:
                raise ValueError(f"ModernNCA needs at least 2 training rows (a row is never its own "
                                 f"neighbour), got {len(x_num)}")
            n_num = x_num.shape[1]
            self.n_classes, self.temperature, self.sample_rate = int(n_classes), temperature, sample_rate
            self.num_embeddings = (PeriodicEmbeddings(n_num, d_embedding, n_frequencies=n_frequencies,
                                                      frequency_init_scale=frequency_init_scale, lite=True)
                                   if plr else None)
            self.one_hot = OneHot(cardinalities) if cardinalities else None
            d_in = n_num * (d_embedding if plr else 1) + (self.one_hot.width if self.one_hot else 0)
            self.encoder = nn.Linear(d_in, dim)
            blocks = [Block(dim, d_block, dropout) for _ in range(n_blocks)]
            self.blocks = nn.Sequential(*blocks, nn.BatchNorm1d(dim)) if blocks else nn.Identity()
            # The candidates (training rows and labels) travel with the module (.to(device)) but are not
            # weights: persistent=False keeps them out of state_dict and out of the loop's best-state copies.
            labels = torch.as_tensor(labels)
            y = (nn.functional.one_hot(labels.long(), self.n_classes).float() if self.n_classes
                 else labels.float().reshape(-1, 1))
            self.register_buffer("cand_num", x_num.float(), persistent=False)
            self.register_buffer("cand_cat", x_cat.long(), persistent=False)
            self.register_buffer("cand_y", y, persistent=False)
            self._cache = None  # candidate embeddings for inference, valid while the weights are unchanged

        def encode(self, x_num, x_cat):
            parts = []
            if x_num.shape[1]:
                parts.append(self.num_embeddings(x_num).flatten(1) if self.num_embeddings is not None else x_num)
            if self.one_hot is not None:
                parts.append(self.one_hot(x_cat))
            return self.blocks(self.encoder(torch.cat(parts, dim=1)))

        def predict_from(self, z, z_cand, y_cand, exclude=None):
            """Softmax(-distance / T)-weighted label average; `exclude` (bool, query x candidate) masks
            pairs out of the neighbourhood. Float32 even under bf16 autocast: distances need the precision."""
            with torch.autocast(z.device.type, enabled=False):
                logits = -torch.cdist(z.float(), z_cand.float()) / self.temperature
                if exclude is not None:
                    logits = logits.masked_fill(exclude, float("-inf"))
                out = torch.softmax(logits, dim=-1) @ y_cand
                return torch.log(out + LOG_EPS) if self.n_classes else out

        def training_forward(self, batch, rows):
            """Predictions for a training batch from its stochastic neighbourhood: the batch's other rows
            plus a fresh random `sample_rate` share of the remaining training rows."""
            n = len(self.cand_y)
            outside = torch.ones(n, dtype=torch.bool, device=rows.device)
            outside[rows] = False
            pool = outside.nonzero().squeeze(1)
            k = min(len(pool), max(1, int(len(pool) * self.sample_rate)))  # >= 1: a 1-row batch has a neighbour
            picked = pool[torch.randperm(len(pool), device=pool.device)[:k]]
            z = self.encode(*batch)
            z_cand = torch.cat([z, self.encode(self.cand_num[picked], self.cand_cat[picked])])
            cand_rows = torch.cat([rows, picked])
            return self.predict_from(z, z_cand, self.cand_y[cand_rows], rows[:, None] == cand_rows[None, :])

        def candidate_embeddings(self, chunk: int = 8192):
            """Embeddings of all training rows, in chunks; cached in eval mode without gradients."""
            cacheable = not self.training and not torch.is_grad_enabled()
            if cacheable and self._cache is not None:
                return self._cache
            z = torch.cat([self.encode(self.cand_num[i:i + chunk], self.cand_cat[i:i + chunk])
                           for i in range(0, len(self.cand_y), chunk)])
            if cacheable:
                self._cache = z
            return z

        def forward(self, x_num, x_cat):
            """Inference: the whole training part is the neighbourhood (rows are not excluded: a query
            that is itself a training row finds itself, as a nearest-neighbour model does)."""
            z_cand = self.candidate_embeddings()
            z = self.encode(x_num, x_cat)
            step = max(1, PAIRS_PER_CHUNK // len(z_cand))
            return torch.cat([self.predict_from(z[i:i + step], z_cand, self.cand_y)
                              for i in range(0, len(z), step)])

        # Anything that changes the weights or their device invalidates the cached candidate embeddings.
        def train(self, mode: bool = True):
            self._cache = None
            return super().train(mode)

        def load_state_dict(self, *args, **kwargs):
            self._cache = None
            return super().load_state_dict(*args, **kwargs)

        def _apply(self, *args, **kwargs):
            self._cache = None
            return super()._apply(*args, **kwargs)

    return Net


def ModernNCANet(*args, **kwargs):
    """Build the ModernNCA module (see _network_classes for the layers)."""
    return _network_classes()(*args, **kwargs)
