"""The computations behind each notebook's experiments, one module per notebook.

They take the student's functions as arguments, so a notebook plugs in its own
work, and the tests run the same code on the references to check what the
notebook's text claims.
"""
