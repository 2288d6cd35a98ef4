"""Why a model wins: explanations of fitted models, computed after a run, never during tuning.

Where it sits. Explaining needs a fitted model: the tuned configuration's, refitted from the run's records
when it was not kept. So this package sits above the adapters, preprocessing and splits (it fits and
queries models) and beside execution; bench.analysis never imports it. The report reads the files it
writes into the run folder (SHAP summaries, influential rows), as it reads records.

  * shap_values: SHAP values of a fitted adapter's model on the test part. GBDTs: exact TreeSHAP
    (Lundberg et al. 2020) as each library implements it, in the model's margin space, so that the values
    of a row sum to its margin minus the expected value; other models: the `shap` package's
    model-agnostic permutation explainer on the original columns against a background sample.
  * influence: the training rows with the largest influence on the test loss for XGBoost and LightGBM
    (BoostIn, Brophy, Hammoudeh & Lowd 2023, JMLR).
"""
