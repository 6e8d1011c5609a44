"""Datasets. The synthetic scene world (:mod:`.synthetic`) needs only numpy and Pillow; the mmseg
dataset classes are registered by importing :mod:`.mm_datasets`."""
