"""Build tooling for the course: parse → validate → split → execute → site, and the `course` CLI."""
