"""Packed training (issue 23): K trials' networks of one architecture family trained as one model.

    layers.py    PackedLinear, PackedBatchNorm, PackedDropout: every weight stacked on a leading K axis
    nets.py      packed MLP and ResNet (width and depth differences padded), load / store one member
    optim.py     PackedAdamW: AdamW with a learning rate, weight decay and state per member
    training.py  train_packed / PackedRun: the shared loop for a pack, one StoppingMonitor per member

Every module here imports torch; this package file does not (the tuner finds packing through the
adapters' light protocol, bench.adapters.framework.neural_base).
"""
