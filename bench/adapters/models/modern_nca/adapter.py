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

from typing import ClassVar

from bench.adapters import register_adapter
from bench.adapters.framework.neural_base import (
    SMOKE_TRAINING,
    TRAINING_DEFAULTS,
    NeuralAdapter,
    TrainingParams,
    split_inputs,
)
from bench.adapters.space import FloatParam, IntParam


class ModernNCAParams(TrainingParams):
    dim: int
    n_blocks: int
    d_block: int
    dropout: float
    temperature: float
    sample_rate: float
    plr: bool
    d_embedding: int
    n_frequencies: int
    frequency_init_scale: float


@register_adapter
class ModernNCAAdapter(NeuralAdapter[ModernNCAParams]):
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
    defaults: ClassVar[ModernNCAParams] = {
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
        from bench.adapters.models.modern_nca.network import ModernNCANet

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
        from bench.adapters.models.modern_nca.network import neighbourhood_loss

        return neighbourhood_loss
