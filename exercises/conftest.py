"""Lets ``pytest exercises/NN-name`` work in a checkout: the grader's plugin, as a conftest.

The grader itself never reads this file; it runs the tests with
``-p exercises.plugin`` in a temporary copy.
"""

from exercises.plugin import (
    pytest_addoption,
    pytest_collect_file,
    pytest_collection_finish,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_logstart,
    pytest_runtest_makereport,
    pytest_unconfigure,
    student,
)

__all__ = [
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_finish",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_logstart",
    "pytest_runtest_makereport",
    "pytest_unconfigure",
    "student",
]
