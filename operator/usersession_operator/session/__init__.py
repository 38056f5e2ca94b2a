"""The pure vocabulary of a session: the typed UserSession (model: kinds, phases,
defaults), the parser of a body into it (spec, with its field readers), child names
and labels, and references to the Secrets and ConfigMaps that hold Redis
credentials. No I/O; imports nothing else of the operator's.
"""
