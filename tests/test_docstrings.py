"""The runnable examples (``>>>``) in the main public docstrings run as written."""

from __future__ import annotations

import doctest

import pytest

import ibkit
from ibkit import InformationPlaneAnalysis
from ibkit.callbacks import InformationPlane
from ibkit.estimators import make_estimator

DOCUMENTED = [ibkit.mutual_information, ibkit.entropy, make_estimator, InformationPlaneAnalysis, InformationPlane]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("documented", DOCUMENTED, ids=lambda item: item.__qualname__)
def test_docstring_examples_run(documented):
    examples = doctest.DocTestFinder(recurse=False).find(documented, documented.__qualname__,
                                                         globs={"__name__": "ibkit_doctest"})
    assert examples and examples[0].examples, f"{documented.__qualname__} has no runnable example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for example in examples:
        runner.run(example)
    assert runner.failures == 0, f"{runner.failures} example(s) of {documented.__qualname__} failed (see the output)"
