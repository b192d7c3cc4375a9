"""mnistkit: a reproducible study of handwritten-digit recognition on MNIST."""

__version__ = "0.1.0"
