"""Hidden tests, one module per notebook, one ``check_<exercise>`` function per exercise.

A hidden test cell calls one of these on the student's function. Each compares the
student's function with the library's reference on many random inputs and edge
cases, gradient-checks backward passes, and names the known mistakes.
"""
