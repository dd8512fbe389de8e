"""The UI-free core of mt5console.

Nothing under this package may import textual or rich, nor anything of mt5console outside
``mt5console.core``: a test imports it in a subprocess and fails if they appear.
"""
