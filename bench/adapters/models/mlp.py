"""MLP baseline of Gorishniy et al. 2021, "Revisiting Deep Learning Models for Tabular Data" (NeurIPS).

Architecture (their eq. 1): n_blocks x (Linear -> ReLU -> Dropout), all of width d_block, then a linear
head. The paper lets the first and last hidden widths differ from the middle ones; we use one width
for all blocks, as the later rtdl / TabM code of the same authors does (fewer knobs, same reach).
The module is rtdl_revisiting_models.MLP, the authors' reference implementation.
"""

from __future__ import annotations

from typing import ClassVar

from bench.adapters import Capabilities, register_adapter
from bench.adapters.framework.neural_base import SMOKE_TRAINING, TRAINING_DEFAULTS, NeuralAdapter, TrainingParams
from bench.adapters.space import FloatParam, IntParam


class MLPParams(TrainingParams):
    n_blocks: int
    d_block: int
    dropout: float


@register_adapter
class MLPAdapter(NeuralAdapter[MLPParams]):
    name = "mlp"
    libraries = ("torch", "rtdl_revisiting_models")
    # Several trials train as one packed model (--pack K; bench.adapters.framework.packed).
    capabilities = Capabilities(gpu="optional", pack=True)
    defaults: ClassVar[MLPParams] = {
        **TRAINING_DEFAULTS,
        "n_blocks": 3,
        "d_block": 256,
        "dropout": 0.1,
    }
    smoke_params = {**SMOKE_TRAINING, "n_blocks": 1, "d_block": 16}
    # Search space. Sources:
    #   Gorishniy et al. 2021, Revisiting Deep Learning Models for Tabular Data, appendix (MLP space):
    #     # layers UniformInt[1, 8] ([1, 16] on the largest sets), layer size UniformInt[1, 512]
    #     ([1, 1024]), dropout {0, Uniform[0, 0.5]}, lr LogUniform[1e-5, 1e-2],
    #     weight decay {0, LogUniform[1e-6, 1e-3]}, patience 16.
    #   Gorishniy et al. 2024, TabM (ICLR 2025), repo yandex-research/tabm exp/mlp/*/0-tuning:
    #     n_blocks int[1, 6], d_block int[64, 1024] (step 16), dropout {0, U[0, 0.5]},
    #     lr LogU[3e-5, 1e-3], weight_decay {0, LogU[1e-4, 1e-1]}.
    # Used: architecture ranges from the TabM repo (width 1..63 is never competitive and depth >6
    # only costs time), optimizer ranges from the 2021 paper. The {0, ...} point masses for dropout and
    # weight decay are not expressible as one FloatParam; dropout's range includes 0, and weight decay
    # at the lower end 1e-6 is practically none.
    search_space = {
        "n_blocks": IntParam(1, 6),
        "d_block": IntParam(64, 1024),
        "dropout": FloatParam(0.0, 0.5),
        "lr": FloatParam(1e-5, 1e-2, log=True),
        "weight_decay": FloatParam(1e-6, 1e-3, log=True),
    }

    def build_network(self, X, d_out: int):
        from rtdl_revisiting_models import MLP

        p = self.params
        return MLP(d_in=X.shape[1], d_out=d_out, n_blocks=int(p["n_blocks"]), d_block=int(p["d_block"]),
                   dropout=float(p["dropout"]))
