"""bench.testing.pack_contract.check_fit_pack, the fit_pack part of check_adapter: every model that packs
(capabilities.pack) passes it, and an adapter whose fit_pack breaks the contract is caught.

Called directly on the binary check data (check_adapter runs it for every task type of every packing
built-in, tests/test_check_adapter.py): two configurations, fit alone and as one pack (exact=True).
"""

from __future__ import annotations

import pytest

from bench.adapters import load_adapters
from bench.adapters.models.mlp import MLPAdapter
from bench.testing import AdapterCheckError, _with_defaults
from bench.testing.contract import Checker
from bench.testing.data import make_check_data
from bench.testing.pack_contract import check_fit_pack

PACKING = sorted(name for name, cls in load_adapters().items()
                 if cls.capabilities.pack and cls.__module__.startswith("bench.adapters."))


def check(cls) -> Checker:
    checker = Checker(cls)
    check_fit_pack(checker, _with_defaults(cls, cls.smoke_params, {}), make_check_data("binary"), 0,
                   set(cls.smoke_params))
    return checker


def test_the_packing_builtins_are_mlp_resnet_mlp_plr_and_tabm():
    assert {"mlp", "resnet", "mlp_plr", "tabm"} <= set(PACKING)


@pytest.mark.parametrize("name", PACKING)
def test_packing_builtin_fits_each_member_as_its_own_fit(name):
    assert "fit_pack members = their own fits" in check(load_adapters()[name]).passed


class DropsAMember(MLPAdapter):
    """Returns one entry fewer than it was given models (the tuner would lose a trial)."""

    @classmethod
    def fit_pack(cls, models, X_train, y_train, X_val, y_val, *, exact=False):
        return super().fit_pack(models, X_train, y_train, X_val, y_val, exact=exact)[:-1]


class TrainsEveryMemberAsTheFirst(MLPAdapter):
    """Packs the members with the first one's hyperparameters (ignores the trials' own)."""

    @classmethod
    def fit_pack(cls, models, X_train, y_train, X_val, y_val, *, exact=False):
        for model in models[1:]:
            model.params = dict(models[0].params)
        return super().fit_pack(models, X_train, y_train, X_val, y_val, exact=exact)


class ForgetsHowItEnded(MLPAdapter):
    @classmethod
    def fit_pack(cls, models, X_train, y_train, X_val, y_val, *, exact=False):
        errors = super().fit_pack(models, X_train, y_train, X_val, y_val, exact=exact)
        models[1].ctx.info.pop("iterations")
        return errors


@pytest.mark.parametrize("cls, expected", [
    (DropsAMember, "returned 1 entries for 2 models"),
    # caught by its end (another kept epoch) or else by its predictions
    (TrainsEveryMemberAsTheFirst, "member 1 .* (records its end as|predicts the val part otherwise than its own)"),
    (ForgetsHowItEnded, "member 1 .* records its end as"),
])
def test_broken_fit_pack_is_caught(cls, expected):
    with pytest.raises(AdapterCheckError, match=f"fit_pack: {expected}"):
        check(cls)
