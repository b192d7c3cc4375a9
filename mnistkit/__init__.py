"""mnistkit: a reproducible study of handwritten-digit recognition on MNIST."""

from . import numerics

numerics.pin()  # before torch, NumPy or OpenCV start: see mnistkit.numerics

__version__ = "0.1.0"
