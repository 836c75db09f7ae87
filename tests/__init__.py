"""The test suite as a package, so shared helpers have one import path: ``from tests.support.servers import ...``."""
