"""The recipe that makes the shipped weights: the image pool, training, the pair check's calibration and
the model card. Run each as `python -m recipes.<name>` from the repository root."""
