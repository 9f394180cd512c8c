"""Build tooling for the course: parse → validate → split → execute → site, and the `course` CLI."""

import sys

# jsonschema (imported by nbformat) loads rfc3987_syntax when it is installed, and that compiles a
# Lark grammar at import: 2.3 s of every `course` command's start-up on 2 cores. Only the "iri"
# format check needs it, which neither nbformat nor nbgrader uses, so the course's own processes
# go without it (kernels and jupyter-book are separate processes and keep it).
sys.modules.setdefault("rfc3987_syntax", None)
