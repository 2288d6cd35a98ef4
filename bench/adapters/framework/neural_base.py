"""What every torch adapter shares: preprocessing choice, the training parameters, the training loop, prediction.

A neural adapter only says how to build its network (`build_network`) and which preprocessing it
wants; training, early stopping, pruning reports, seeding and device handling live once in
bench.adapters.framework.torch_training. Training hyperparameters (lr, weight_decay, batch_size, patience, ...)
sit in the same `defaults` / `search_space` dicts as the architecture: a model's params TypedDict extends
TrainingParams, and TrainConfig.from_params picks the training keys out.

This module is light: torch is imported only inside methods (and by torch_training), so that listing models
stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, Literal, Mapping, Sequence, TypedDict, Union, get_args

from bench import settings
from bench.adapters.framework.contract import Adapter, Capabilities, ParamsT
from bench.preprocessing import MatrixPreprocessor, NumCatPreprocessor

# Environment variable that overrides TrainConfig.fast_path for every fit of a process (and of the
# sweep workers and Ray tasks it starts): off | eager | graph | compile | auto.
FAST_PATH_ENV = settings.FAST_PATH.name
FastPath = Literal["auto", "off", "eager", "graph", "compile"]
# "constant": the configured lr throughout; "warmup_cosine": linear warm-up over warmup_epochs, then cosine
# decay to 0 at max_epochs, set once per epoch (the ExcelFormer authors' schedule, lr_at_epoch).
LrSchedule = Literal["constant", "warmup_cosine"]


class TrainingParams(TypedDict):
    """The training keys every neural adapter's params have (TrainConfig's fields; lr_schedule and
    warmup_epochs only where a model sets them)."""

    lr: float
    weight_decay: float
    batch_size: int | str  # a size, "auto" (by training rows: auto_batch_size) or a model's own rule
    eval_batch_size: int
    max_epochs: int
    patience: int
    grad_clip: float | None
    time_limit_s: float | None
    fast_path: FastPath


# Training settings every neural adapter starts from; adapters override what their paper says.
TRAINING_DEFAULTS: TrainingParams = {
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "batch_size": "auto",  # by training-set size, see auto_batch_size
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


@dataclass
class TrainConfig:
    """The training settings of one fit, validated (TrainingParams as read by the loop)."""

    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: Union[int, str] = "auto"
    eval_batch_size: int = 4096
    max_epochs: int = 100
    patience: int = 16
    grad_clip: float | None = None  # max gradient norm; None: no clipping
    time_limit_s: float | None = None  # wall-clock budget for the whole fit
    fast_path: FastPath = "auto"  # which training loop; see bench.adapters.framework.torch_training
    lr_schedule: LrSchedule = "constant"
    warmup_epochs: int = 0  # for "warmup_cosine"

    def __post_init__(self) -> None:
        check_fast_path("fast_path", self.fast_path)
        if self.lr_schedule not in get_args(LrSchedule):
            raise ValueError(f"lr_schedule must be one of {', '.join(get_args(LrSchedule))}, got {self.lr_schedule!r}")
        if int(self.warmup_epochs) < 0:
            raise ValueError(f"warmup_epochs must be at least 0, got {self.warmup_epochs}")

    def lr_at_epoch(self, epoch: int) -> float:
        """The learning rate of epoch `epoch` (1-based). warmup_cosine, as the ExcelFormer authors'
        run_default_config_excel.py: lr * epoch / W for the first W epochs, then CosineAnnealingLR stepped
        once per epoch over the remaining max_epochs - W: lr * (1 + cos(pi * (epoch - W) / (max_epochs - W))) / 2."""
        if self.lr_schedule == "constant":
            return float(self.lr)
        warmup, total = int(self.warmup_epochs), int(self.max_epochs)
        if epoch <= warmup:
            return float(self.lr) * epoch / warmup
        return float(self.lr) * (1 + math.cos(math.pi * (epoch - warmup) / max(1, total - warmup))) / 2

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "TrainConfig":
        """Pick the training keys out of an adapter's parameter dict (the rest are architecture)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})


def check_fast_path(option: str, value) -> str:
    if value not in get_args(FastPath):
        raise ValueError(f"{option} must be one of {', '.join(get_args(FastPath))}, got {value!r}")
    return value


def auto_batch_size(n_rows: int) -> int:
    """Batch size by training-set size.

    Gorishniy et al. 2021 used 256 for ~10-50k training rows, 512 for ~50-200k and 1024 beyond; smaller
    data gets smaller batches so that an epoch still has a few dozen optimizer steps.
    """
    for limit, size in ((1_000, 32), (4_000, 64), (12_000, 128), (60_000, 256), (200_000, 512)):
        if n_rows <= limit:
            return size
    return 1024


class NeuralAdapter(Adapter[ParamsT], Generic[ParamsT]):
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

    @classmethod
    def fit_pack(cls, models: Sequence[Adapter], X_train, y_train, X_val, y_val, *,
                 exact: bool = False) -> list[BaseException | None]:
        """Adapter.fit_pack for networks the packed loop knows (rtdl MLP and ResNet, or a network class with a
        `packer`, bench.adapters.framework.packed.nets.packer; a model says so with Capabilities(pack=True)):
        the models train in packs (bench.adapters.framework.packed), each member
        with its own stopping protocol, and end as their own fit would leave them. exact: pack mode "exact"
        (bench.adapters.framework.packed.layers.PackMode) instead of "fast"."""
        from bench.adapters.framework.packed.fitting import pack_members, train_packs

        nets = [m for m in models if isinstance(m, NeuralAdapter)]
        if len(nets) != len(models) or not nets:
            raise TypeError(f"{cls.__name__}.fit_pack takes neural adapters only")
        results = train_packs(pack_members(nets, X_train), nets[0].task, X_train, y_train, X_val, y_val,
                              mode="exact" if exact else "fast")
        for model, result in zip(nets, results):
            if result.trained is not None:
                model._net = result.trained
                model.kept_val_predictions = result.trained.val_predictions
        return [r.error for r in results]

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
