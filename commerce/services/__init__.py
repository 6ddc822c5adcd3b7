"""Use cases of the commerce context: one function per use case, run by the group-commit writer.

Each takes a UnitOfWork first (what it reads and changes is saved in one transaction with the
rest of its batch) and decides everything before it changes anything, so a refused command
leaves no trace.
"""
