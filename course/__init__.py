"""The course machinery: build the release and solutions, grade, self-check, test-cell helpers."""
