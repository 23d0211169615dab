"""Course content: the toolkit learners import, the chapter sources and the model zoo."""
