"""gohook.views: what a person or a pipeline sees (pure renderers from state to output).

jsonlines: one JSON object (or readable line) per event; live: the rich live view (modules x
capabilities); tables: rich tables for inspect and symbols; progress: spinners on terminals.
"""
