"""Course helpers: code shared by several sections.

Each module here is written once and *inlined* by the build into every notebook that imports it
(`from course_helpers.NAME import ...`), so notebooks stay self-contained. Modules must therefore
only import the standard library, third-party packages, or other `course_helpers` modules with
`from course_helpers.X import ...` on a line of its own.
"""
