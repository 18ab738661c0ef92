# runtests.py - runs every tests/interop/test_*.py with unittest
# SPDX-License-Identifier: MIT
#
# usage: runtests.py [-k PATTERN]...   (PATTERN as unittest's -k)
# The last line printed is always "N passed, N failed".

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    patterns = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == '-k']
    if patterns:
        loader.testNamePatterns = ['*%s*' % p for p in patterns]
    failed = 0
    try:
        suite = loader.discover(HERE, pattern='test_*.py', top_level_dir=HERE)
        result = unittest.TextTestRunner(stream=sys.stdout,
                                         verbosity=2).run(suite)
        failed = (len(result.failures) + len(result.errors) +
                  len(result.unexpectedSuccesses))
        skipped = len(result.skipped)
        passed = result.testsRun - failed - skipped
        if skipped:
            print('%d skipped' % skipped)
        if result.testsRun == 0:
            print('no tests ran')
            failed = max(failed, 1)
    except Exception as e:  # a test module that does not even import
        print('interop runner error: %r' % e)
        passed, failed = 0, max(failed, 1)
    sys.stdout.flush()
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
