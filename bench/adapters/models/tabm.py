"""TabM: Gorishniy, Kotelnikov, Babenko 2024, "TabM: Advancing Tabular Deep Learning with
Parameter-Efficient Ensembling" (ICLR 2025).

One network that holds k MLPs sharing most weights (BatchEnsemble-style adapters, "tabm" architecture).
As the paper prescribes, the k members are trained jointly on the mean of their k losses (the shared
training loop does this for any (batch, k, d_out) output) and predictions average the members'
probabilities (regression: their values). Early stopping watches the ensemble, not single members.
The module is tabm.TabM; categoricals are one-hot encoded inside it (codes in, as TabM expects).
"""

from __future__ import annotations

from typing import ClassVar

from bench.adapters import Capabilities, register_adapter
from bench.adapters.framework.neural_base import (
    SMOKE_TRAINING,
    TRAINING_DEFAULTS,
    NeuralAdapter,
    TrainingParams,
    split_inputs,
)
from bench.adapters.space import FloatParam, IntParam


class TabMParams(TrainingParams):
    k: int  # ensemble members
    n_blocks: int
    d_block: int
    dropout: float


@register_adapter
class TabMAdapter(NeuralAdapter[TabMParams]):
    name = "tabm"
    libraries = ("torch", "tabm")
    input_kind = "numcat"
    # Several trials train as one packed model (--pack K): K trials of k members each, K x k networks
    # (bench.adapters.framework.packed.tabm).
    capabilities = Capabilities(gpu="optional", pack=True)
    # Defaults: TabM.make() defaults without embeddings (3 blocks of 512, dropout 0.1, k = 32, ReLU,
    # random-signs scaling init) and the tabm README's optimizer (AdamW lr 2e-3, weight decay 3e-4),
    # gradient clipping at norm 1 as in the TabM training code.
    defaults: ClassVar[TabMParams] = {
        **TRAINING_DEFAULTS,
        "lr": 2e-3,
        "weight_decay": 3e-4,
        "grad_clip": 1.0,
        "k": 32,
        "n_blocks": 3,
        "d_block": 512,
        "dropout": 0.1,
    }
    smoke_params = {**SMOKE_TRAINING, "k": 4, "n_blocks": 1, "d_block": 16}
    # Search space: TabM paper, appendix (hyperparameter tuning spaces, "TabM"):
    #   n_blocks UniformInt[1, 5], d_block UniformInt[64, 1024], dropout {0, U[0, 0.5]},
    #   lr LogU[1e-4, 5e-3], weight decay {0, LogU[1e-4, 1e-1]}; k = 32 is fixed, not tuned.
    # As for MLP-PLR, the {0, ...} point masses become ranges reaching (practically) zero.
    search_space = {
        "n_blocks": IntParam(1, 5),
        "d_block": IntParam(64, 1024),
        "dropout": FloatParam(0.0, 0.5),
        "lr": FloatParam(1e-4, 5e-3, log=True),
        "weight_decay": FloatParam(1e-6, 1e-1, log=True),
    }

    def build_network(self, X, d_out: int):
        from tabm import TabM

        from bench.adapters.framework.nn_modules import NumCatAdapter

        p = self.params
        n_num, cardinalities = split_inputs(X)
        return NumCatAdapter(TabM.make(n_num_features=n_num, cat_cardinalities=cardinalities, d_out=d_out,
                                       k=int(p["k"]), n_blocks=int(p["n_blocks"]),
                                       d_block=int(p["d_block"]), dropout=float(p["dropout"])))
