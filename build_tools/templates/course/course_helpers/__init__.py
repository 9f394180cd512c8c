"""Code shared by several sections of this course.

Each module is written once and inlined by the build into the notebooks that import it
(`from course_helpers.NAME import ...` on a line of its own), so notebooks stay self-contained.
"""
