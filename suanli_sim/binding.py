"""The simulator's one import of NVIDIA's binding: the constants, error classes and ctypes
structures that the fake answers with, so its values and errors are the real module's own."""

import pynvml

__all__ = ["pynvml"]
