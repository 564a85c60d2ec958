"""The grading service (``course serve``): students press Submit in the notebook and get
their score in seconds.

An HTTP service (Starlette on uvicorn) that takes a notebook from the Submit cell of a
release notebook (or ``python -m tinytorch.submit``) with the student's token, grades it
through the course's :class:`coursekit.grading.session.GradingSession` (the same bundle,
sandbox, limits, flags, restored test cells, late policy and feedback pages as ``course
grade``), into the course's grading root and gradebook, and answers with what the
feedback page carries: the score, each test's name, points and failure message, never
hidden-test code or anything the kernel printed.

* :mod:`~coursekit.service.store`: the service's tables in the gradebook's database
  (tokens, every attempt with its time and result);
* :mod:`~coursekit.service.tokens`: tokens, stored hashed (``course tokens``);
* :mod:`~coursekit.service.intake`: what a submitted notebook must be;
* :mod:`~coursekit.service.attempts`: the bounded queue, grading, which attempt
  counts, recovery after a crash;
* :mod:`~coursekit.service.app`: the HTTP routes; :mod:`~coursekit.service.serve` runs it.

Grading never imports this package.
"""
