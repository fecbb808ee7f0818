"""Hostile messages and the exact accounting of where each one ended up.

The corpus grows with every poison message found: add it to ``corpus.py`` with where it must land
for each sink, and the file, Kafka and PostgreSQL pipelines all run it.
"""
