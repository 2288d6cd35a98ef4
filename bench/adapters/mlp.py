"""MLP baseline of Gorishniy et al. 2021, "Revisiting Deep Learning Models for Tabular Data" (NeurIPS).

Architecture (their eq. 1): n_blocks x (Linear -> ReLU -> Dropout), all of width d_block, then a linear
head. The paper lets the first and last hidden widths differ from the middle ones; we use one width
for all blocks, as the later rtdl / TabM code of the same authors does (fewer knobs, same reach).

torch is imported only inside methods (via bench.adapters.torch_training) so that listing models,
which imports this module, stays fast.
"""

from __future__ import annotations

from bench.adapters import register_adapter
from bench.adapters.base import Adapter, Capabilities
from bench.adapters.space import FloatParam, IntParam
from bench.preprocessing import MatrixPreprocessor


def build_mlp(d_in: int, d_out: int, n_blocks: int, d_block: int, dropout: float):
    from torch import nn

    layers: list = []
    width = d_in
    for _ in range(n_blocks):
        layers += [nn.Linear(width, d_block), nn.ReLU(), nn.Dropout(dropout)]
        width = d_block
    layers.append(nn.Linear(width, d_out))
    return nn.Sequential(*layers)


@register_adapter
class MLPAdapter(Adapter):
    name = "mlp"
    family = "neural"
    libraries = ("torch",)
    capabilities = Capabilities(gpu="optional")
    defaults = {
        "n_blocks": 3,
        "d_block": 256,
        "dropout": 0.1,
        "lr": 1e-3,
        "weight_decay": 1e-5,
        "batch_size": "auto",  # by training-set size, see torch_training.auto_batch_size
        "eval_batch_size": 4096,
        "max_epochs": 100,
        "patience": 16,  # the paper's early-stopping patience
        "grad_clip": None,  # the paper does not clip; divergence is caught by the training loop
        "time_limit_s": None,
    }
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

    def make_preprocessor(self):
        # Quantile-normal numerics: the paper's choice for MLPs (robust to heavy tails and outliers).
        return MatrixPreprocessor(numeric="quantile", categorical="onehot")

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        from bench.adapters.torch_training import TrainConfig, train_network

        p = self.params
        d_in = X_train.shape[1]

        def factory(d_out: int):
            return build_mlp(d_in, d_out, int(p["n_blocks"]), int(p["d_block"]), float(p["dropout"]))

        self._net = train_network(factory, self.task, self.ctx, X_train, y_train, X_val, y_val,
                                  TrainConfig.from_params(p))

    def _predict_raw(self, X):
        # The network has one output per class in task.n_classes, so a class absent from training
        # still gets a (small) probability column.
        return self._net.predict(X)
