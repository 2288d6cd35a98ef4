"""ResNet of Gorishniy et al. 2021, "Revisiting Deep Learning Models for Tabular Data" (NeurIPS), sec. 3.2.

Blocks of BatchNorm -> Linear -> ReLU -> Dropout -> Linear -> Dropout with a skip connection; the module
is rtdl_revisiting_models.ResNet (the authors' reference implementation).
"""

from __future__ import annotations

from typing import ClassVar

from bench.adapters import Capabilities, register_adapter
from bench.adapters.framework.neural_base import SMOKE_TRAINING, TRAINING_DEFAULTS, NeuralAdapter, TrainingParams
from bench.adapters.space import FloatParam, IntParam


class ResNetParams(TrainingParams):
    n_blocks: int
    d_block: int
    d_hidden_multiplier: float
    dropout1: float
    dropout2: float


@register_adapter
class ResNetAdapter(NeuralAdapter[ResNetParams]):
    name = "resnet"
    libraries = ("torch", "rtdl_revisiting_models")
    # Several trials train as one packed model (--pack K; bench.adapters.framework.packed).
    capabilities = Capabilities(gpu="optional", pack=True)
    # The paper tunes ResNet and publishes no default configuration; these are mid-space values
    # (2 blocks of width 192, hidden factor 2, hidden dropout 0.25, no residual dropout) with the
    # paper's optimizer settings for MLP-like models.
    defaults: ClassVar[ResNetParams] = {
        **TRAINING_DEFAULTS,
        "n_blocks": 2,
        "d_block": 192,
        "d_hidden_multiplier": 2.0,
        "dropout1": 0.25,
        "dropout2": 0.0,
    }
    smoke_params = {**SMOKE_TRAINING, "n_blocks": 1, "d_block": 16, "d_hidden_multiplier": 1.0}
    # Search space: Gorishniy et al. 2021, appendix, ResNet:
    #   # layers UniformInt[1, 8], layer size UniformInt[64, 512], hidden factor Uniform[1, 4],
    #   hidden dropout Uniform[0, 0.5], residual dropout {0, Uniform[0, 0.5]},
    #   lr LogUniform[1e-5, 1e-2], weight decay {0, LogUniform[1e-6, 1e-3]}.
    # The {0, ...} point masses are approximated by ranges that include (practically) zero.
    search_space = {
        "n_blocks": IntParam(1, 8),
        "d_block": IntParam(64, 512),
        "d_hidden_multiplier": FloatParam(1.0, 4.0),
        "dropout1": FloatParam(0.0, 0.5),
        "dropout2": FloatParam(0.0, 0.5),
        "lr": FloatParam(1e-5, 1e-2, log=True),
        "weight_decay": FloatParam(1e-6, 1e-3, log=True),
    }

    def build_network(self, X, d_out: int):
        from rtdl_revisiting_models import ResNet

        p = self.params
        return ResNet(d_in=X.shape[1], d_out=d_out, n_blocks=int(p["n_blocks"]), d_block=int(p["d_block"]),
                      d_hidden_multiplier=float(p["d_hidden_multiplier"]),
                      dropout1=float(p["dropout1"]), dropout2=float(p["dropout2"]))
