"""The pure heart of pairline: user and match states, pairing policy, protocol message types.

Nothing here does I/O or reads a clock: time comes in as integer milliseconds, and every
transition returns the effects (messages, pings, closes) that the engine carries out.
"""
