"""How tensors reach the device and run there: batches and their order, augmentation, the input
cache, module placement (channels-last, torch.compile), precision, device and thread set-up,
progress bars.

May import: ``galm.config`` only.
"""
