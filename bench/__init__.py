"""Benchmarks (``make bench``): each module here with a ``main()`` is one part."""
