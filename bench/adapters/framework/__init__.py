"""What every model shares: the contract and the machinery around it (no model lives here).

    context.py         TaskInfo, FitContext: what fit is told (seed, threads, device, deadline) and records
    contract.py        Adapter (the interface), Capabilities, expand_proba, estimator_output, the trivial-fit
                       fallback
    registry.py        register_adapter, BUILTIN_MODULES, entry points, get_adapter / resolve_models
    early_stopping.py  the one per-iteration stopping protocol (StoppingMonitor) every iterative model calls
    gbdt_base.py       GBDTAdapter: XGBoost, LightGBM and CatBoost on the stopping protocol
    neural_base.py     NeuralAdapter, the training parameters (TrainConfig): light, imports no torch
    torch_training.py  the one torch training loop (imports torch); torch_fast.py its CUDA fast path
    nn_modules.py      small torch modules shared by networks (one-hot, None for an empty input part)
    in_context.py      InContextAdapter (TabPFN, TabICL, TabDPT): local weights only, the CPU bound
"""
