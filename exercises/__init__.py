"""khttpd-book's auto-graded exercises: one folder per exercise, plus the tools.

``exercises.grade`` grades a working copy or a whole class, ``exercises.release``
writes the student version, ``exercises.plugin`` is the pytest plugin the
exercise tests run under.  ``FORMAT.md`` describes an exercise folder.
"""
