"""FT-Transformer of Gorishniy et al. 2021, "Revisiting Deep Learning Models for Tabular Data", sec. 3.3.

Every numeric feature gets a linear embedding and every categorical one a learned embedding (so
categoricals are passed as codes, not one-hot); a [CLS] token goes through pre-norm Transformer blocks
with ReGLU feed-forward layers. The module is rtdl_revisiting_models.FTTransformer.
Attention is quadratic in the number of features: wide data is slow on CPU, which the capabilities
below state instead of letting a sweep grind.
"""

from __future__ import annotations

from typing import ClassVar

from bench.adapters import register_adapter
from bench.adapters.framework.contract import Capabilities
from bench.adapters.framework.neural_base import (
    SMOKE_TRAINING,
    TRAINING_DEFAULTS,
    NeuralAdapter,
    TrainingParams,
    split_inputs,
)
from bench.adapters.space import FloatParam, IntParam


class FTTransformerParams(TrainingParams):
    n_blocks: int
    d_block: int
    attention_n_heads: int
    attention_dropout: float
    ffn_d_hidden_multiplier: float
    ffn_dropout: float
    residual_dropout: float


@register_adapter
class FTTransformerAdapter(NeuralAdapter[FTTransformerParams]):
    name = "ft_transformer"
    libraries = ("torch", "rtdl_revisiting_models")
    input_kind = "numcat"
    # A token per feature: 1000+ features make attention memory explode; such data is refused.
    capabilities = Capabilities(gpu="optional", max_features=1000)
    # Defaults: the paper's default FT-Transformer (3 blocks, d=192, 8 heads, attention dropout 0.2,
    # FFN factor 4/3, FFN dropout 0.1, no residual dropout, AdamW lr 1e-4, weight decay 1e-5), as
    # returned by FTTransformer.get_default_kwargs(3) / make_default_optimizer().
    defaults: ClassVar[FTTransformerParams] = {
        **TRAINING_DEFAULTS,
        "lr": 1e-4,
        "weight_decay": 1e-5,
        "n_blocks": 3,
        "d_block": 192,
        "attention_n_heads": 8,
        "attention_dropout": 0.2,
        "ffn_d_hidden_multiplier": 4 / 3,
        "ffn_dropout": 0.1,
        "residual_dropout": 0.0,
    }
    smoke_params = {**SMOKE_TRAINING, "n_blocks": 1, "d_block": 16}
    # Search space: Gorishniy et al. 2021, appendix, FT-Transformer:
    #   # layers UniformInt[1, 4], feature embedding size UniformInt[64, 512], residual dropout
    #   {0, Uniform[0, 0.2]}, attention dropout Uniform[0, 0.5], FFN dropout Uniform[0, 0.5],
    #   FFN factor Uniform[2/3, 8/3], lr LogUniform[1e-5, 1e-3], weight decay LogUniform[1e-6, 1e-3].
    # The embedding size steps by 8 so that it divides into the 8 attention heads.
    search_space = {
        "n_blocks": IntParam(1, 4),
        "d_block": IntParam(64, 512, step=8),
        "residual_dropout": FloatParam(0.0, 0.2),
        "attention_dropout": FloatParam(0.0, 0.5),
        "ffn_dropout": FloatParam(0.0, 0.5),
        "ffn_d_hidden_multiplier": FloatParam(2 / 3, 8 / 3),
        "lr": FloatParam(1e-5, 1e-3, log=True),
        "weight_decay": FloatParam(1e-6, 1e-3, log=True),
    }

    def build_network(self, X, d_out: int):
        from rtdl_revisiting_models import FTTransformer

        from bench.adapters.framework.nn_modules import NumCatAdapter

        p = self.params
        n_num, cardinalities = split_inputs(X)
        return NumCatAdapter(FTTransformer(
            n_cont_features=n_num, cat_cardinalities=cardinalities, d_out=d_out,
            n_blocks=int(p["n_blocks"]), d_block=int(p["d_block"]),
            attention_n_heads=int(p["attention_n_heads"]), attention_dropout=float(p["attention_dropout"]),
            ffn_d_hidden=None, ffn_d_hidden_multiplier=float(p["ffn_d_hidden_multiplier"]),
            ffn_dropout=float(p["ffn_dropout"]), residual_dropout=float(p["residual_dropout"]),
        ))

    def param_groups(self, model, weight_decay: float) -> list[dict]:
        # The paper's grouping: no weight decay on feature embeddings, normalization layers and biases.
        # The package's make_parameter_groups() covers the blocks' norms; the output norm (a vector,
        # like every norm scale and bias) is added by the ndim rule.
        _, zero = model.inner.make_parameter_groups()
        no_decay = {id(p) for p in zero["params"]} | {id(p) for p in model.parameters() if p.ndim < 2}
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": [p for p in params if id(p) not in no_decay], "weight_decay": weight_decay},
                {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0}]
