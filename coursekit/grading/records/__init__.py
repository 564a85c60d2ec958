"""Storing results: the grading root, the gradebook, results, grades.csv and deadlines."""
