"""Build step for the optional native KANLinear kernels (kamoe/nn/_kanfast.c).

Everything else about the package lives in pyproject.toml. The extension is optional: where it
cannot be compiled (no C compiler, no OpenMP), the install still succeeds and KANLinear uses its
torch path; `python -m kamoe bench speed` and `kamoe.nn.kan.native_available()` tell which one
is in use.
"""

import sys

from setuptools import Extension, setup

flags = ["-O3", "-fno-trapping-math", "-fno-math-errno"]
link = []
if sys.platform.startswith("linux"):
    flags.append("-fopenmp")
    link.append("-fopenmp")

setup(ext_modules=[Extension("kamoe.nn._kanfast", ["kamoe/nn/_kanfast.c"],
                             extra_compile_args=flags, extra_link_args=link, optional=True)])
