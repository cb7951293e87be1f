"""Pure math, no Django: metrics, the score and factor, the stack's multipliers, position accounting, bars.

Everything here is a function of plain numbers and numpy arrays, so it is tested without a database.
"""
