"""Great Expectations: the suites (``expectations``) and running them (``validate``)."""
