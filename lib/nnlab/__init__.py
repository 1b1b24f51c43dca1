"""nnlab: the course's library.

Reference implementations of every exercise (under the exercise's name), plus the
network, trainer, data sets and plots that the notebooks' experiments use.
Notebooks import modules by name: ``from nnlab import gradcheck, layers``.
"""

__version__ = "0.1.0"
