"""kubetrove's version: pyproject's (a unit test keeps them equal). hack/images writes the version an
image is tagged with into its copy of this file, so a running operator reports what its tag names."""

VERSION = "0.1.0"
