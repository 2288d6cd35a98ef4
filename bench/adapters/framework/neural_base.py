"""What every torch adapter shares: preprocessing choice, the training loop, prediction.

A neural adapter only says how to build its network (`build_network`) and which preprocessing it
wants; training, early stopping, pruning reports, seeding and device handling live once in
bench.adapters.framework.torch_training. Training hyperparameters (lr, weight_decay, batch_size, patience, ...)
sit in the same `defaults` / `search_space` dicts as the architecture and are picked out by
TrainConfig.from_params.

torch is imported only inside methods so that listing models stays fast.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bench import settings
from bench.adapters.framework.contract import Adapter, Capabilities
from bench.preprocessing import MatrixPreprocessor, NumCatPreprocessor

# Environment variable that overrides TrainConfig.fast_path for every fit of a process (and of the
# sweep workers and Ray tasks it starts): off | eager | graph | compile | auto.
FAST_PATH_ENV = settings.FAST_PATH.name

# Training settings every neural adapter starts from; adapters override what their paper says.
TRAINING_DEFAULTS: dict[str, Any] = {
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "batch_size": "auto",  # by training-set size, see torch_training.auto_batch_size
    "eval_batch_size": 4096,
    "max_epochs": 100,
    "patience": 16,  # Gorishniy et al. 2021 (and the TabM paper): early-stopping patience 16
    "grad_clip": None,  # max gradient norm; None = no clipping
    "time_limit_s": None,
    # Training loop: "auto" = the CUDA fast path (CUDA graphs) on a GPU, the eager loop on CPU;
    # "off" | "eager" | "graph" | "compile" force one (bench.adapters.framework.torch_training, torch_fast).
    # Not tuned; the environment variable BENCH_FAST_PATH overrides it for a whole sweep.
    "fast_path": "auto",
}

# Tiny fits for check_adapter and smoke sweeps: a handful of epochs on a small network.
SMOKE_TRAINING = {"max_epochs": 3, "patience": 2}


class NeuralAdapter(Adapter):
    family = "neural"
    capabilities = Capabilities(gpu="optional")
    # "matrix": one float32 matrix (one-hot categoricals); "numcat": (x_num, x_cat codes) for
    # networks that embed or one-hot categoricals themselves.
    input_kind: ClassVar[str] = "matrix"
    numeric_transform: ClassVar[str] = "quantile"  # quantile-normal numerics (Gorishniy et al. 2021)

    def make_preprocessor(self):
        if self.input_kind == "numcat":
            return NumCatPreprocessor(numeric=self.numeric_transform)
        return MatrixPreprocessor(numeric=self.numeric_transform, categorical="onehot")

    def build_network(self, X, d_out: int):
        """The torch module for preprocessed training input X (array or (x_num, x_cat))."""
        raise NotImplementedError

    def param_groups(self, model, weight_decay: float) -> list[dict]:
        """Optimizer parameter groups; the default decays weight matrices only."""
        from bench.adapters.framework.torch_training import default_param_groups

        return default_param_groups(model, weight_decay)

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        from bench.adapters.framework.torch_training import TrainConfig, train_network

        self._net = train_network(lambda d_out: self.build_network(X_train, d_out), self.task, self.ctx,
                                  X_train, y_train, X_val, y_val, TrainConfig.from_params(self.params),
                                  param_groups=self.param_groups, training_loss=self.training_loss())
        self.kept_val_predictions = self._net.val_predictions

    def training_loss(self):
        """A torch_training.TrainingLoss when the model trains on something other than plain
        "outputs vs targets" (mixup, neighbourhood predictions); None: the loop's usual loss."""
        return None

    def predict_raw(self, X):
        # One output per class in task.n_classes, so a class absent from training still gets a
        # (small) probability column.
        return self._net.predict(X)


def split_inputs(X) -> tuple[int, list[int]]:
    """(number of numeric columns, categorical cardinalities) of a NumCatPreprocessor output."""
    x_num, x_cat = X
    return x_num.shape[1], [int(c) for c in (x_cat.max(axis=0) + 1)] if x_cat.shape[1] else []
