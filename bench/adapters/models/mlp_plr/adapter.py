"""MLP-PLR: an MLP on periodic embeddings of the numeric features.

Gorishniy, Rubachev, Babenko 2022, "On Embeddings for Numerical Features in Tabular Deep Learning"
(NeurIPS): each numeric feature x becomes ReLU(Linear([cos(2 pi c x), sin(2 pi c x)])) with learned
frequencies c ~ N(0, sigma^2) at init ("PLR"). The embeddings are rtdl_num_embeddings.PeriodicEmbeddings
(lite=False, as in the paper); the backbone is tabm.MLPBackbone. The TabM paper (Gorishniy et al.
2024/ICLR 2025) uses this model as its strongest plain-MLP baseline, and its tuning protocol is used here.
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


class MLPPLRParams(TrainingParams):
    n_blocks: int
    d_block: int
    dropout: float
    d_embedding: int
    n_frequencies: int
    frequency_init_scale: float


@register_adapter
class MLPPLRAdapter(NeuralAdapter[MLPPLRParams]):
    name = "mlp_plr"
    libraries = ("torch", "rtdl_num_embeddings", "tabm")
    input_kind = "numcat"
    # Several trials train as one packed model (--pack K; bench.adapters.models.mlp_plr.packed).
    capabilities = Capabilities(gpu="optional", pack=True)
    # Defaults: PeriodicEmbeddings' own defaults (d_embedding 24, 48 frequencies, sigma 0.01: "a good
    # starting point" in the rtdl_num_embeddings README), a 2x512 backbone with dropout 0.1 (TabM.make's
    # default depth/width with embeddings), lr 1e-3 / weight decay 1e-5 as for the other MLPs, and
    # gradient clipping at norm 1 as in the TabM training code.
    defaults: ClassVar[MLPPLRParams] = {
        **TRAINING_DEFAULTS,
        "grad_clip": 1.0,
        "n_blocks": 2,
        "d_block": 512,
        "dropout": 0.1,
        "d_embedding": 24,
        "n_frequencies": 48,
        "frequency_init_scale": 0.01,
    }
    smoke_params = {**SMOKE_TRAINING, "n_blocks": 1, "d_block": 16, "d_embedding": 4, "n_frequencies": 4}
    # Search space: TabM paper, appendix (hyperparameter tuning spaces, "MLP-PLR"):
    #   n_blocks UniformInt[1, 5], d_block UniformInt[64, 1024], dropout {0, U[0, 0.5]},
    #   lr LogU[3e-5, 1e-3], weight decay {0, LogU[1e-4, 1e-1]},
    #   n_frequencies UniformInt[16, 96], frequency_init_scale (sigma) LogU[0.01, 10],
    #   d_embedding UniformInt[16, 64].
    # The {0, ...} point masses are approximated by ranges; weight decay's lower end is widened to
    # 1e-6 ("practically none") so that the no-decay end stays reachable.
    search_space = {
        "n_blocks": IntParam(1, 5),
        "d_block": IntParam(64, 1024),
        "dropout": FloatParam(0.0, 0.5),
        "lr": FloatParam(3e-5, 1e-3, log=True),
        "weight_decay": FloatParam(1e-6, 1e-1, log=True),
        "n_frequencies": IntParam(16, 96),
        "frequency_init_scale": FloatParam(0.01, 10.0, log=True),
        "d_embedding": IntParam(16, 64),
    }

    def build_network(self, X, d_out: int):
        from bench.adapters.models.mlp_plr.network import MLPPLR

        p = self.params
        n_num, cardinalities = split_inputs(X)
        return MLPPLR(n_num, cardinalities, d_out, n_blocks=int(p["n_blocks"]), d_block=int(p["d_block"]),
                      dropout=float(p["dropout"]), d_embedding=int(p["d_embedding"]),
                      n_frequencies=int(p["n_frequencies"]),
                      frequency_init_scale=float(p["frequency_init_scale"]))
