"""`make bench`: the seed strategy timed on our engine and on its peers (backtesting.py, backtrader).

Not part of the test run. ``python -m benchmarks --help`` lists the options; ``rules`` holds the
one definition of the benchmarked strategy, ``reference`` the oracle every contender's trade count
is compared with, ``contenders`` the registry of what is timed.
"""
