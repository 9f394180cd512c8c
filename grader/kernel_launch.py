"""Start an IPython kernel with the submission's resource limits (the driver's kernelspec runs this).

Limits come from COURSE_GRADER_LIMITS (JSON: resource name -> soft/hard value). Memory is capped
with RLIMIT_DATA (heap and anonymous mappings: what tensors and lists use) rather than
RLIMIT_AS, because importing torch alone reserves ~600 MB of address space it never touches.
"""

import json
import os
import sys

from grader.procs import set_rlimits


def reseed() -> None:
    """A forked kernel starts with its zygote's random state: give it fresh entropy, as a new
    process would have (Python's `random` reseeds itself at fork; numpy's legacy global does not)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def main() -> None:
    set_rlimits(json.loads(os.environ.pop("COURSE_GRADER_LIMITS", "{}")))
    from ipykernel import kernelapp

    sys.argv[0] = "ipykernel_launcher"
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
