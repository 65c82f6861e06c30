"""The pure core: conversation engine, content model, normaliser, quiz and lead rules.

Nothing here does I/O or imports a platform library (a test enforces it): every function takes
plain values and returns plain values, so it is tested without mocks.
"""
